"""Registering, logging in, and the two credentials every endpoint accepts."""

from __future__ import annotations

import uuid

import httpx
import jwt

from tests.app.client import register
from tests.support.app_server import TEST_SECRET_KEY, AppServer


async def test_register_login_and_me(http: httpx.AsyncClient) -> None:
    email = f"Mixed.Case.{uuid.uuid4().hex[:8]}@Example.com"
    registered = await http.post("/api/register", json={
        "name": "Ada", "email": email, "password": "long-enough-pw"})
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert body["user"] == {"id": body["user"]["id"], "name": "Ada", "email": email.lower()}
    claims = jwt.decode(body["token"], TEST_SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == str(body["user"]["id"]) and claims["exp"] > claims["iat"]
    http.cookies.clear()

    login = await http.post("/api/login", json={"email": email.upper(),
                                                "password": "long-enough-pw"})
    assert login.status_code == 200
    http.cookies.clear()
    me = await http.get("/api/me", headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert me.json() == {"user": body["user"]}


async def test_validation_errors_are_422_per_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/register", json={"name": "", "email": "nope",
                                                       "password": "short"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"name", "email", "password"}
    user = await register(http)
    taken = await http.post("/api/register", json={"name": "Again", "email": user.email,
                                                   "password": "long-enough-pw"})
    assert taken.status_code == 422 and "email" in taken.json()["errors"]
    wrong = await http.post("/api/login", json={"email": user.email, "password": "wrong-pass"})
    assert wrong.status_code == 422 and "email" in wrong.json()["errors"]
    not_json = await http.post("/api/login", content=b"{oops",
                               headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "error" in not_json.json()


async def test_missing_or_bad_credentials_get_401(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/me")).status_code == 401
    assert (await http.get("/api/conversations")).status_code == 401
    bad = await http.get("/api/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and bad.json() == {"error": "Unauthenticated."}
    forged = jwt.encode({"sub": "1", "exp": 9999999999}, "another-secret-" * 3, "HS256")
    assert (await http.get("/api/me",
                           headers={"Authorization": f"Bearer {forged}"})).status_code == 401
    expired = jwt.encode({"sub": "1", "exp": 1}, TEST_SECRET_KEY, "HS256")
    assert (await http.get("/api/me",
                           headers={"Authorization": f"Bearer {expired}"})).status_code == 401


async def test_the_session_cookie_works_on_every_endpoint(chat_app: AppServer) -> None:
    async with httpx.AsyncClient(base_url=chat_app.base_url) as browser:
        email = f"cookie.{uuid.uuid4().hex[:8]}@example.com"
        registered = await browser.post("/api/register", json={
            "name": "Cookie", "email": email, "password": "long-enough-pw"})
        assert registered.status_code == 201
        assert (await browser.get("/api/me")).json()["user"]["email"] == email
        created = await browser.post("/api/conversations", json={"title": "by cookie"})
        assert created.status_code == 201
        listed = (await browser.get("/api/conversations")).json()["data"]
        assert [c["title"] for c in listed] == ["by cookie"]
        auth = await browser.post("/broadcasting/auth", data={
            "socket_id": "1.2", "channel_name": f"private-{listed[0]['channel']}"})
        assert auth.status_code == 200 and auth.json()["auth"].startswith("app-key:")
        cookie = browser.cookies["chat_session"]
        assert (await browser.post("/api/logout", json={})).status_code == 200
        assert (await browser.get("/api/me")).status_code == 401
        # Logout revoked the cookie itself, not only the browser's copy of it.
        browser.cookies.set("chat_session", cookie)
        assert (await browser.get("/api/me")).status_code == 401
        browser.cookies.set("chat_session", "tampered.value")
        assert (await browser.get("/api/me")).status_code == 401


async def test_password_guessing_is_throttled_per_account(http: httpx.AsyncClient) -> None:
    user = await register(http)
    http.cookies.clear()
    statuses = [
        (await http.post("/api/login", json={"email": user.email, "password": f"guess-{n}"}))
        .status_code
        for n in range(10)
    ]
    assert statuses == [422] * 10
    blocked = await http.post("/api/login", json={"email": user.email, "password": "guess-x"})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "error" in blocked.json()
    # another account from the same address is not affected
    other = await register(http)
    http.cookies.clear()
    ok = await http.post("/api/login", json={"email": other.email,
                                             "password": "correct-horse-1"})
    assert ok.status_code == 200
