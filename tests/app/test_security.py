"""Guards against cross-site requests, oversized and malformed bodies, and revoked tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx

from tests.app.client import register
from tests.support.app_server import AppServer

TITLE = {"title": "mine"}


async def _sign_in_by_cookie(browser: httpx.AsyncClient) -> None:
    registered = await browser.post("/api/register", json={
        "name": "Cookie", "email": f"c.{uuid.uuid4().hex[:8]}@example.com",
        "password": "long-enough-pw"})
    assert registered.status_code == 201


async def test_cookie_requests_from_other_sites_or_as_forms_are_refused(
    chat_app: AppServer,
) -> None:
    async with httpx.AsyncClient(base_url=chat_app.base_url, timeout=10) as browser:
        await _sign_in_by_cookie(browser)
        form = await browser.post("/api/conversations", data=TITLE)
        assert form.status_code == 415
        plain = await browser.post("/api/conversations", content=b'{"title": "x"}',
                                   headers={"content-type": "text/plain"})
        assert plain.status_code == 415
        foreign = await browser.post("/api/conversations", json=TITLE,
                                     headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403
        cross = await browser.post("/api/conversations", json=TITLE,
                                   headers={"sec-fetch-site": "cross-site"})
        assert cross.status_code == 403
        listed = (await browser.get("/api/conversations")).json()["data"]
        assert listed == []
        same = await browser.post("/api/conversations", json=TITLE,
                                  headers={"origin": chat_app.base_url,
                                           "sec-fetch-site": "same-origin"})
        assert same.status_code == 201


async def test_bodies_that_are_not_json_objects_are_refused(http: httpx.AsyncClient) -> None:
    user = await register(http)
    headers = user.headers()
    plain = await http.post("/api/conversations", content=b'{"title": "x"}',
                            headers={**headers, "content-type": "text/plain"})
    assert plain.status_code == 415
    form = await http.post("/api/conversations", data=TITLE, headers=headers)
    assert form.status_code == 415
    deep = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    nested = await http.post("/api/conversations", content=deep,
                             headers={**headers, "content-type": "application/json"})
    assert nested.status_code in (400, 413) and "error" in nested.json()
    modest = b'{"title": "t", "x": ' + b"[" * 40 + b"]" * 40 + b"}"
    too_deep = await http.post("/api/conversations", content=modest,
                               headers={**headers, "content-type": "application/json"})
    assert too_deep.status_code == 400
    surrogate = await http.post("/api/conversations", content=b'{"title": "a\\ud800b"}',
                                headers={**headers, "content-type": "application/json"})
    assert surrogate.status_code == 400


async def test_oversized_bodies_are_refused_before_they_are_read(
    http: httpx.AsyncClient,
) -> None:
    big = {"name": "x" * 100_000, "email": "a@example.com", "password": "long-enough-pw"}
    assert (await http.post("/api/register", json=big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield b" " * 1024

    streamed = await http.post("/api/register", content=chunks(),
                               headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    user = await register(http)
    huge = await user.post("/api/conversations", {"title": "y" * (2 * 1024 * 1024)})
    assert huge.status_code == 413


async def test_odd_ids_are_404_not_500(http: httpx.AsyncClient) -> None:
    user = await register(http)
    own = await user.new_conversation()
    for raw in ("%D9%A3", "%C2%B2", str(2**63), "9" * 19, "0", "-1", f"{own['id']}%C2%B2",
                f"0{own['id']}"):
        response = await user.get(f"/api/conversations/{raw}")
        assert response.status_code == 404, raw
        assert (await user.post(f"/api/conversations/{raw}/typing",
                                {"is_typing": True})).status_code == 404


async def test_logout_revokes_the_token(http: httpx.AsyncClient) -> None:
    user = await register(http)
    assert (await user.get("/api/me")).status_code == 200
    assert (await user.post("/api/logout")).status_code == 200
    assert (await user.get("/api/me")).status_code == 401
    assert (await user.post("/api/conversations", TITLE)).status_code == 401
    login = await http.post("/api/login", json={"email": user.email,
                                                "password": "correct-horse-1"})
    http.cookies.clear()
    fresh = await http.get("/api/me", headers={"Authorization":
                                               f"Bearer {login.json()['token']}"})
    assert fresh.status_code == 200


async def test_a_reused_idempotency_key_with_another_message_is_422(
    http: httpx.AsyncClient,
) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    url = f"/api/conversations/{conversation['id']}/messages"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await user.post(url, {"message": "one"}, headers=key)
    assert first.status_code == 202
    replay = await user.post(url, {"message": "one"}, headers=key)
    assert replay.status_code == 202 and replay.json() == first.json()
    other = await user.post(url, {"message": "two"}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["errors"]


async def test_catch_up_is_paged(http: httpx.AsyncClient) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    for n in range(3):
        await user.post(f"{base}/messages", {"message": f"m{n}"})
    page = (await user.get(base, params={"since": 0, "limit": 2})).json()
    assert len(page["messages"]) == 2 and page["has_more"] is True
    assert (await user.get(base, params={"since": 0, "limit": 500})).status_code == 422


async def test_responses_carry_security_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/config")
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data:" in policy and "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
