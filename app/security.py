"""Request guards in front of every route: body size, cross-site requests, security headers.

- Bodies: a request announcing more than its limit gets 413 before anything is read, and one
  that sends more than announced (or streams without a length) is cut off at the limit. Requests
  without credentials get a small limit, since nobody has signed in yet to be held to account.
- Cross-site requests: the session cookie is sent by the browser on its own, so a request that
  relies on it (no `Authorization` header) and changes something must come from this origin
  (`Origin`/`Sec-Fetch-Site`), and, outside `/broadcasting/*` (which pusher-js posts as a form and
  which only returns a signature no other origin can read), must be JSON: a cross-site page can
  only send a JSON content type after a CORS preflight, which this app never grants.
- Headers: CSP (scripts, styles and images from this origin only, sockets to the broadcaster),
  no framing, no sniffing, no referrer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(Exception):
    """The client sent more than the limit; answered with 413."""


def content_security_policy(settings: Settings) -> str:
    """The page may talk to this origin and to the broadcaster's socket, and load nothing else."""
    broadcaster = settings.broadcaster
    ws = "wss" if broadcaster.scheme == "https" else "ws"
    socket = f"{ws}://{broadcaster.host}:{broadcaster.port}"
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        # Vue sets `style` attributes (e.g. avatar hues); no style can run script.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        f"connect-src 'self' {socket}",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class SecurityMiddleware:
    """Applies the guards of this module to every HTTP request of `app`."""

    def __init__(
        self, app: ASGIApp, settings: Settings, *, anonymous_limit: int, signed_in_limit: int
    ) -> None:
        self._app = app
        self._anonymous_limit = anonymous_limit
        self._signed_in_limit = signed_in_limit
        policy = content_security_policy(settings)
        self._extra_headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _headers(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._extra_headers]
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _reply(send_with_headers, *refusal)
            return
        has_credentials = "authorization" in headers or "cookie" in headers
        limit = self._signed_in_limit if has_credentials else self._anonymous_limit
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await _reply(send_with_headers, 413, "The request body is too large.")
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reply(send_with_headers, 413, "The request body is too large.")

    @staticmethod
    def _refusal(scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why a cookie-authenticated state change must be refused, or None."""
        if scope["method"] not in UNSAFE_METHODS:
            return None
        if headers.get("authorization", "").lower().startswith("bearer "):
            return None  # a bearer token is never sent by the browser on its own
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return 403, "Cross-site requests are not allowed."
        origin = headers.get("origin")
        if origin is not None:
            scheme = scope.get("scheme", "http")
            if origin != f"{scheme}://{headers.get('host', '')}":
                return 403, "Cross-site requests are not allowed."
        path = str(scope.get("path", ""))
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if not path.startswith("/broadcasting/") and scope["method"] == "POST" \
                and media_type != "application/json":
            return 415, "Send the request body as application/json."
        return None


async def _reply(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
