"""Register, log in, log out, and who am I."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth import SESSION_COOKIE
from app.container import services_of
from app.errors import ApiError, validation_failed
from app.models import User
from app.routes.common import current_user
from app.serializers import user_json
from app.services import accounts
from app.validation import Fields, read_body


def _signed_in(request: Request, user: User, status: int) -> Response:
    services = services_of(request)
    assert user.id is not None
    body: dict[str, Any] = {"token": services.tokens.issue_jwt(user.id), "user": user_json(user)}
    response = JSONResponse(body, status)
    response.set_cookie(
        SESSION_COOKIE,
        services.tokens.issue_cookie(user.id),
        max_age=services.tokens.ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=services.settings.production,
    )
    return response


async def register(request: Request) -> Response:
    fields = Fields(await read_body(request))
    name = fields.text("name", max_length=255)
    email = fields.text("email", max_length=255, email=True)
    password = fields.text("password", min_length=8, max_length=1024, strip=False)
    fields.done()
    assert name is not None and email is not None and password is not None
    services = services_of(request)
    try:
        user = await services.db.run(
            lambda s: accounts.register(s, services.passwords, name, email, password)
        )
    except accounts.EmailTaken:
        raise validation_failed({"email": ["The email has already been taken."]}) from None
    return _signed_in(request, user, 201)


async def login(request: Request) -> Response:
    fields = Fields(await read_body(request))
    email = fields.text("email", max_length=255)
    password = fields.text("password", max_length=1024, strip=False)
    fields.done()
    assert email is not None and password is not None
    services = services_of(request)
    # Password guessing is throttled per address and account, as Laravel's login throttle does.
    client = request.client.host if request.client else ""
    retry_after = services.login_limiter.hit((client, email.strip().lower()))
    if retry_after is not None:
        raise ApiError(429, "Too many sign-in attempts; try again later.",
                       headers={"Retry-After": str(retry_after)})
    user = await services.db.run(
        lambda s: accounts.authenticate(s, services.passwords, email, password)
    )
    if user is None:
        raise validation_failed({"email": ["These credentials do not match our records."]})
    return _signed_in(request, user, 200)


async def logout(_request: Request) -> Response:
    response = JSONResponse({"ok": True})
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
