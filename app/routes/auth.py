"""Register, log in, log out, and who am I."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import SESSION_COOKIE, HashingBusy
from app.container import services_of
from app.errors import ApiError, validation_failed
from app.models import User
from app.routes.common import current_user
from app.serializers import user_json
from app.services import accounts
from app.shared_state import Limit, SharedState
from app.validation import Fields, read_body

T = TypeVar("T")


def _signed_in(request: Request, user: User, status: int) -> Response:
    services = services_of(request)
    assert user.id is not None
    token = services.tokens.issue_jwt(user.id, user.token_version)
    body: dict[str, Any] = {"token": token, "user": user_json(user)}
    response = JSONResponse(body, status)
    response.set_cookie(
        SESSION_COOKIE,
        services.tokens.issue_cookie(user.id, user.token_version),
        max_age=services.tokens.ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=services.settings.production,
    )
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def _throttle(state: SharedState, limit: Limit, key: str, message: str) -> None:
    retry_after = await state.hit(limit, key)
    if retry_after is not None:
        raise ApiError(429, message, headers={"Retry-After": str(retry_after)})


async def _hashed(work: Awaitable[T]) -> T:
    try:
        return await work
    except HashingBusy:
        raise ApiError(503, "The server is busy; try again shortly.",
                       headers={"Retry-After": "2"}) from None


async def register(request: Request) -> Response:
    services = services_of(request)
    await _throttle(services.state, services.limits.register, _client(request),
              "Too many registrations from this address; try again later.")
    fields = Fields(await read_body(request))
    name = fields.text("name", max_length=255)
    email = fields.text("email", max_length=255, email=True)
    password = fields.text("password", min_length=8, max_length=1024, strip=False)
    fields.done()
    assert name is not None and email is not None and password is not None
    taken = validation_failed({"email": ["The email has already been taken."]})
    if await services.db.run(lambda s: accounts.email_taken(s, email)):
        raise taken
    password_hash = await _hashed(services.passwords.hash_async(password))
    try:
        user = await services.db.run(
            lambda s: accounts.register(s, name, email, password_hash)
        )
    except accounts.EmailTaken:
        raise taken from None
    return _signed_in(request, user, 201)


async def login(request: Request) -> Response:
    services = services_of(request)
    fields = Fields(await read_body(request))
    email = fields.text("email", max_length=255)
    password = fields.text("password", max_length=1024, strip=False)
    fields.done()
    assert email is not None and password is not None
    # Password guessing is throttled per address and account, as Laravel's login throttle does,
    # and per address across accounts, so varying the email does not buy more argon2 work.
    message = "Too many sign-in attempts; try again later."
    await _throttle(services.state, services.limits.login_address, _client(request), message)
    await _throttle(services.state, services.limits.login,
                    f"{_client(request)} {accounts.normalize_email(email)}", message)
    user = await services.db.run(lambda s: accounts.find_by_email(s, email))
    if user is not None and services.settings.production \
            and user.email == accounts.DEMO_EMAIL:
        user = None  # the demo account's password is public: never a way in in production
    matches = await _hashed(services.passwords.verify_async(
        user.password_hash if user else None, password))
    if user is None or not matches:
        raise validation_failed({"email": ["These credentials do not match our records."]})
    return _signed_in(request, user, 200)


async def logout(request: Request) -> Response:
    """Revoke every token and cookie of the signed-in user (all devices), and drop the cookie."""
    services = services_of(request)
    try:
        user = await current_user(request)
    except ApiError:
        user = None
    if user is not None and user.id is not None:
        user_id = user.id
        await services.db.run(lambda s: accounts.revoke_tokens(s, user_id))
    response = JSONResponse({"ok": True, "success": True})
    response.delete_cookie(SESSION_COOKIE)
    return response


async def me(request: Request) -> Response:
    return JSONResponse({"user": user_json(await current_user(request))})


routes = [
    Route("/api/register", register, methods=["POST"]),
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
]
