"""One TCP connection before it is a WebSocket: HTTP/1.1 parsed with httptools (llhttp).

Requests are answered in order, with keep-alive and pipelining. A valid `/app/{key}` upgrade is
answered with `101 Switching Protocols` (checked by `protocol.handshake`) and the transport is
handed to a `WebSocketConnection`, whose frames `ws_frames.FrameReader` parses; the HTTP
parser goes away with this object. Every other request goes to the REST routes (`server.rest`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Coroutine, Iterable
from functools import partial
from typing import Any, cast
from urllib.parse import unquote

import httptools

from broadcaster.protocol.handshake import HandshakeRefused, accept_upgrade
from broadcaster.protocol.paths import strip_prefix
from broadcaster.protocol.socket_ids import new_socket_id
from broadcaster.server.eager import run_eagerly
from broadcaster.server.http_response import encode_response
from broadcaster.server.rest import OK_EMPTY, Pending, Response, handle_http, route_label
from broadcaster.server.state import NodeState
from broadcaster.server.websocket import WebSocketConnection
from broadcaster.server.ws_frames import FrameReader

log = logging.getLogger("broadcaster.http")

MAX_HEADER_BYTES = 16_384  # request line and headers together
# Parsed requests waiting behind one whose hub call is pending; reading pauses beyond this.
MAX_PIPELINED = 32
_WS_MAX_SIZE_FLOOR = 65_536
_TLS_HANDSHAKE = b"\x16"
_INTERNAL_ERROR = b'{"error":"Internal server error"}'
_OK_EMPTY_BYTES = encode_response(*OK_EMPTY)  # the whole answer to a kept-alive publish
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request we will not accept."""


class _Request:
    """One parsed request. Headers are kept for GET only: nothing else reads them."""

    __slots__ = ("body", "headers", "keep_alive", "method", "target", "upgrade")

    def __init__(self, method: bytes, target: bytes) -> None:
        self.method = method
        self.target = target
        self.headers: list[tuple[bytes, bytes]] | None = [] if method == b"GET" else None
        self.body = b""
        self.keep_alive = True
        self.upgrade = False  # a WebSocket upgrade to /app/{key}


class HttpConnection(asyncio.Protocol):
    """An HTTP/1.1 connection: REST requests with keep-alive and pipelining, or a WebSocket
    upgrade. `busy` (a hub call is pending) and `last_active` are read by the idle sweep."""

    __slots__ = ("_answering", "_body", "_body_size", "_failed", "_fresh", "_header_bytes",
                 "_leftover", "_parser", "_pending", "_request", "busy", "last_active", "node",
                 "route", "transport")

    def __init__(self, node: NodeState) -> None:
        self.node = node
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._request: _Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._header_bytes = 0
        self._fresh = True
        self._pending: deque[_Request] = deque()
        self._failed: tuple[int, str] | None = None
        # Bytes after an accepted upgrade request: they belong to the WebSocket.
        self._leftover: bytes | None = None
        self.busy = False
        self._answering: asyncio.Future[Any] | None = None  # the request waiting for the hub
        self.route = "other"
        self.last_active = node.loop.time()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, hence no isinstance).
        self.transport = cast(asyncio.Transport, transport)
        self.node.http.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.node.http.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.node.loop.time()
        if self._leftover is not None:  # upgrade requested, still behind a pending request
            self._leftover += data
            return
        if self._fresh and data[:1] == _TLS_HANDSHAKE and not self.node.tls:
            # A TLS ClientHello on the plain port (pusher-js tries `wss` after `ws` fails): close
            # at once so the client moves on instead of waiting for its own timeout.
            assert self.transport is not None
            self.transport.close()
            return
        self._fresh = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._leftover = data[upgrade.args[0]:]
        except httptools.HttpParserError as exc:
            failed, self._failed = self._failed, None
            status, message = failed or (400, f"Malformed HTTP request ({exc})")
            self._serve_pending()  # requests complete before the bad one are answered first
            self._fail(status, message)
            return
        self._serve_pending()

    def eof_received(self) -> bool | None:
        # A half-closed client still gets the answers to what it sent; then the transport closes.
        return None

    # -- httptools callbacks -------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        if self._request is None:
            self._request = _Request(self._parser.get_method(), url)
            self._body = []
            self._body_size = 0
        else:
            self._request.target += url
        self._header_bytes += len(url)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse_headers()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse_headers()
        request = self._request
        assert request is not None
        if request.headers is not None:
            lower = name.lower()
            request.headers.append((lower, value))
        elif len(name) == 14:
            lower = name.lower()
        else:
            return  # not Content-Length, and nothing reads the headers of a non-GET request
        if lower == b"content-length" and int(value) > self.node.limits.max_request_size:
            self._failed = (413, "Request body too large")
            raise _Refused

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._body_size += len(body)
        if self._body_size > self.node.limits.max_request_size:
            self._failed = (413, "Request body too large")
            raise _Refused

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        self._request = None
        self._header_bytes = 0
        request.body = b"".join(self._body) if self._body else b""
        self._body = []
        request.keep_alive = self._parser.should_keep_alive()
        request.upgrade = self._wants_websocket(request)
        self._pending.append(request)

    def _refuse_headers(self) -> None:
        self._failed = (431, "Request header fields too large")
        raise _Refused

    def _wants_websocket(self, request: _Request) -> bool:
        if request.headers is None:
            return False
        path = self._app_path(request.target)
        if path is None or not path.startswith("/app/"):
            return False
        return any(n == b"upgrade" and v.lower() == b"websocket" for n, v in request.headers)

    def _app_path(self, target: bytes) -> str | None:
        """The request path inside the configured prefix (None when outside it)."""
        return strip_prefix(self.node.path_prefix, target.decode("latin-1").partition("?")[0])

    # -- serving requests in order -------------------------------------------------------------

    def _serve_pending(self) -> None:
        transport = self.transport
        assert transport is not None
        pending = self._pending
        while pending and not self.busy and not transport.is_closing():
            request = pending.popleft()
            if request.upgrade:
                self._upgrade(request)
                return
            if self._leftover is not None and not pending:
                # A non-WebSocket request carrying `Upgrade`: answered, then the connection ends
                # (what follows it on the wire is not HTTP any more).
                request.keep_alive = False
            self._dispatch(request)
        if self.busy and len(pending) > MAX_PIPELINED:
            transport.pause_reading()  # resumed when the pending hub call is done

    def _dispatch(self, request: _Request) -> None:
        method = _METHODS.get(request.method) or request.method.decode("ascii", "replace")
        target = request.target.decode("latin-1")
        raw = target.partition("?")[0]
        path = strip_prefix(self.node.path_prefix, raw)
        # Outside the prefix only the probes are served (see rest.handle_http).
        self.route = route_label(raw if path is None and raw in ("/up", "/ready") else path or "")
        head_only = method == "HEAD"
        keep_alive = request.keep_alive
        try:
            answer = handle_http(self.node, method, target, request.body)
        except Exception as exc:
            self._fail_request(exc, target, keep_alive, head_only)
            return
        if isinstance(answer, tuple):
            self._respond(answer, keep_alive, head_only)
        elif isinstance(answer, Pending):
            self.busy = True
            self._answering = answer.waiting
            answer.waiting.add_done_callback(
                partial(self._answer_pending, answer.response, target, keep_alive, head_only))
        else:
            done, task = run_eagerly(self._answer(answer, target, keep_alive, head_only))
            if not done:
                assert isinstance(task, asyncio.Task)
                self.busy = True
                self._answering = task

    def _answer_pending(self, response: Response, target: str, keep_alive: bool,
                        head_only: bool, waiting: asyncio.Future[Any]) -> None:
        """The hub is done with a `Pending` request: answer at once (this callback runs in the
        loop turn the hub finished in, before the socket writes it queued are flushed)."""
        error = None if waiting.cancelled() else waiting.exception()
        if waiting.cancelled() or error is not None:
            self._fail_request(error or asyncio.CancelledError(), target, keep_alive, head_only)
        else:
            self._respond(response, keep_alive, head_only)
        self._resume()

    def _fail_request(self, exc: BaseException, target: str, keep_alive: bool,
                      head_only: bool) -> None:
        log.error("request failed", extra={"target": target[:200]}, exc_info=exc)
        self._respond((500, _INTERNAL_ERROR), keep_alive, head_only)

    async def _answer(self, handling: Coroutine[Any, Any, Response], target: str,
                      keep_alive: bool, head_only: bool) -> None:
        """Answer as soon as the response is known: a request that had to wait (for Redis) is
        answered in the same step of its task, before the socket writes queued meanwhile are
        flushed, not one loop turn later from a done callback."""
        try:
            response = await handling
        except BaseException as exc:
            self._fail_request(exc, target, keep_alive, head_only)
            if not isinstance(exc, Exception):
                raise
        else:
            self._respond(response, keep_alive, head_only)
        if self.busy:  # went on in a task: serve what queued meanwhile, outside of it
            self.node.loop.call_soon(self._resume)

    def _resume(self) -> None:
        self.busy, self._answering = False, None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self._serve_pending()

    def _respond(self, response: Response, keep_alive: bool, head_only: bool) -> None:
        status = response[0]
        counts = self.node.counters.http
        key = (self.route, status)
        counts[key] = counts.get(key, 0) + 1
        if response is OK_EMPTY and keep_alive and not head_only:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(_OK_EMPTY_BYTES)
            return
        headers = response[2] if len(response) == 3 else ()
        self._write(status, response[1], headers, close=not keep_alive, head_only=head_only)

    def _write(self, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = (), *,
               close: bool, head_only: bool = False) -> None:
        """Send one response; close the connection after it when `close`."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(encode_response(status, body, headers, close=close,
                                        head_only=head_only))
        if close:
            transport.close()

    def _fail(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = (),
              *, route: str = "invalid") -> None:
        """Answer a request we cannot parse or accept with `{"error": message}`, then close."""
        counts = self.node.counters.http
        counts[route, status] = counts.get((route, status), 0) + 1
        self._write(status, json.dumps({"error": message[:200]}).encode(), headers, close=True)

    # -- WebSocket upgrade ---------------------------------------------------------------------

    def _upgrade(self, request: _Request) -> None:
        transport = self.transport
        assert transport is not None and request.headers is not None
        response = accept_upgrade(request.headers)
        if isinstance(response, HandshakeRefused):
            self._fail(response.status, response.message, response.headers, route="upgrade")
            return
        target = request.target.decode("latin-1")
        _, _, query = target.partition("?")
        key = unquote((self._app_path(request.target) or "/app/")[len("/app/"):])
        app = self.node.apps.by_key(key)
        # Frames are limited well above the Pusher message size, which is checked (with a
        # Pusher error rather than a close) once a message is whole.
        max_message = app.max_message_size if app else 10_000
        reader = FrameReader(max(4 * max_message, _WS_MAX_SIZE_FLOOR))
        leftover = self._leftover
        self.node.http.discard(self)
        connection = WebSocketConnection(
            self.node, transport, reader, app, new_socket_id(self.node.websockets)
        )
        transport.set_protocol(connection)
        transport.resume_reading()
        origin = next((v.decode("latin-1") for n, v in request.headers if n == b"origin"), None)
        # The 101 response and the first Pusher frame leave in one write.
        connection.open(query, origin, handshake_response=response)
        if leftover:
            connection.data_received(leftover)
