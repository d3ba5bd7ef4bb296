"""One TCP connection before it is a WebSocket: HTTP/1.1 parsed with h11, keep-alive.

A valid `/app/{key}` upgrade is answered with `101 Switching Protocols` (checked by
`protocol.handshake`) and the transport is handed to a `WebSocketConnection`, whose frames
websockets' Sans-I/O protocol parses; every other request goes to the REST routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from urllib.parse import unquote

import h11
from websockets.protocol import State
from websockets.server import ServerProtocol

from broadcaster.protocol.handshake import HandshakeRefused, accept_upgrade
from broadcaster.protocol.paths import strip_prefix
from broadcaster.protocol.socket_ids import new_socket_id
from broadcaster.server.eager import run_eagerly
from broadcaster.server.rest import Response, handle_http
from broadcaster.server.state import NodeState
from broadcaster.server.websocket import WebSocketConnection

log = logging.getLogger("broadcaster.http")

_JSON_HEADERS = [(b"content-type", b"application/json")]
_WS_MAX_SIZE_FLOOR = 65_536
_TLS_HANDSHAKE = b"\x16"
# Metric labels for HTTP routes: a fixed set, never the raw path (unbounded label values).
_ROUTE_LABEL = re.compile(
    r"^/apps/[^/]+/(events|batch_events|channels|connections)(/[^/]+)?(/users)?$"
)
_quiet = logging.getLogger("broadcaster.frames")
_quiet.setLevel(logging.WARNING)


def route_label(path: str) -> str:
    """The metrics label of a request path (prefix already stripped)."""
    if path in ("/up", "/ready"):
        return path[1:]
    match = _ROUTE_LABEL.match(path)
    if match is None:
        return "other"
    resource, channel, users = match.groups()
    if resource == "channels" and channel:
        return "channel_users" if users else "channel"
    return str(resource)


class HttpListener(asyncio.Protocol):
    """An HTTP/1.1 connection: REST requests with keep-alive, or a WebSocket upgrade."""

    def __init__(self, node: NodeState) -> None:
        self.node = node
        self.transport: asyncio.Transport | None = None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=16_384)
        self.request: h11.Request | None = None
        self.body: list[bytes] = []
        self.body_size = 0
        self.busy = False
        self.fresh = True
        self.route = "other"
        self.last_active = node.loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.node.http.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.node.http.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.node.loop.time()
        if (data[:1] == _TLS_HANDSHAKE and self.h11.their_state is h11.IDLE and self.fresh
                and not self.node.tls):
            # A TLS ClientHello on the plain port (pusher-js tries `wss` after `ws` fails): close
            # at once so the client moves on instead of waiting for its own timeout.
            assert self.transport is not None
            self.transport.close()
            return
        self.fresh = False
        self.h11.receive_data(data)
        self._drain()

    def eof_received(self) -> bool | None:
        self.h11.receive_data(b"")
        self._drain()
        return None

    def _drain(self) -> None:
        transport = self.transport
        assert transport is not None
        while not self.busy and not transport.is_closing():
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if self.request is not None and self._is_upgrade(self.request):
                    self._upgrade(self.request)
                return
            if isinstance(event, h11.Request):
                self.request, self.body, self.body_size = event, [], 0
                if self._content_length(event) > self.node.limits.max_request_size:
                    self._fail(413, "Request body too large")
                    return
            elif isinstance(event, h11.Data):
                self.body_size += len(event.data)
                if self.body_size > self.node.limits.max_request_size:
                    self._fail(413, "Request body too large")
                    return
                self.body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                if self.request is not None and not self._is_upgrade(self.request):
                    self._dispatch(self.request, b"".join(self.body))
            elif isinstance(event, h11.ConnectionClosed):
                transport.close()
                return

    @staticmethod
    def _content_length(request: h11.Request) -> int:
        for name, value in request.headers:
            if name == b"content-length":
                return int(value)
        return 0

    def _app_path(self, request: h11.Request) -> str | None:
        """The request path inside the configured prefix (None when outside it)."""
        path = request.target.decode("latin-1").partition("?")[0]
        return strip_prefix(self.node.path_prefix, path)

    def _is_upgrade(self, request: h11.Request) -> bool:
        if request.method != b"GET":
            return False
        path = self._app_path(request)
        if path is None or not path.startswith("/app/"):
            return False
        return any(n == b"upgrade" and v.lower() == b"websocket" for n, v in request.headers)

    # -- REST ------------------------------------------------------------------------------

    def _dispatch(self, request: h11.Request, body: bytes) -> None:
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("latin-1")
        raw = target.partition("?")[0]
        path = strip_prefix(self.node.path_prefix, raw)
        # Outside the prefix only the probes are served (see rest.handle_http).
        self.route = route_label(raw if path is None and raw in ("/up", "/ready") else path or "")
        try:
            done, result = run_eagerly(handle_http(self.node, method, target, body))
        except Exception:
            log.exception("request failed", extra={"target": target[:200]})
            self._respond((500, b'{"error":"Internal server error"}'))
            return
        if done:
            assert isinstance(result, tuple)
            self._respond(result)
            return
        assert isinstance(result, asyncio.Task)
        self.busy = True
        result.add_done_callback(self._finish_dispatch)

    def _finish_dispatch(self, task: asyncio.Task[Response]) -> None:
        self.busy = False
        if task.cancelled() or task.exception() is not None:
            log.error("request failed", exc_info=None if task.cancelled() else task.exception())
            self._respond((500, b'{"error":"Internal server error"}'))
        else:
            self._respond(task.result())
        self._drain()

    def _respond(self, response: Response) -> None:
        status, body = response[0], response[1]
        counts = self.node.counters.http
        counts[self.route, status] = counts.get((self.route, status), 0) + 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if len(response) > 2:
            headers.extend(response[2])
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=headers))
            data += self.h11.send(h11.Data(data=body)) or b""
            data += self.h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            transport.close()
            return
        transport.write(data or b"")
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is h11.MUST_CLOSE:
            transport.close()
            return
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self.request = None

    def _refuse_upgrade(self, refusal: HandshakeRefused) -> None:
        """Decline an invalid upgrade with an HTTP error, then close the connection."""
        body = json.dumps({"error": refusal.message}).encode()
        headers = [*_JSON_HEADERS, *refusal.headers, (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        assert self.transport is not None
        try:
            data = self.h11.send(h11.Response(status_code=refusal.status, headers=headers)) or b""
            data += self.h11.send(h11.Data(data=body)) or b""
            self.transport.write(data)
        except h11.LocalProtocolError:
            pass
        self.transport.close()

    def _fail(self, status: int, message: str) -> None:
        """Answer a request we cannot parse or accept, then close the connection."""
        assert self.transport is not None
        counts = self.node.counters.http
        counts["invalid", status] = counts.get(("invalid", status), 0) + 1
        body = json.dumps({"error": message[:200]}).encode()
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()),
                           (b"connection", b"close")]
                data = self.h11.send(h11.Response(status_code=status, headers=headers)) or b""
                data += self.h11.send(h11.Data(data=body)) or b""
                self.transport.write(data)
            except h11.LocalProtocolError:
                pass
        self.transport.close()

    # -- WebSocket upgrade -----------------------------------------------------------------

    def _upgrade(self, request: h11.Request) -> None:
        transport = self.transport
        assert transport is not None
        target = request.target.decode("latin-1")
        _, _, query = target.partition("?")
        key = unquote((self._app_path(request) or "/app/")[len("/app/"):])
        app = self.node.apps.by_key(key)
        response = accept_upgrade(request.headers)
        if isinstance(response, HandshakeRefused):
            self._refuse_upgrade(response)
            return
        # The protocol object starts OPEN: the handshake is done, and no handshake objects stay
        # alive for the life of the connection.
        max_message = app.max_message_size if app else 10_000
        ws = ServerProtocol(state=State.OPEN, logger=_quiet,
                            max_size=max(4 * max_message, _WS_MAX_SIZE_FLOOR))
        leftover, _closed = self.h11.trailing_data
        self.node.http.discard(self)
        connection = WebSocketConnection(
            self.node, transport, ws, app, new_socket_id(self.node.websockets)
        )
        transport.set_protocol(connection)
        origin = next((v.decode("latin-1") for n, v in request.headers if n == b"origin"), None)
        # The 101 response and the first Pusher frame leave in one write.
        connection.open(query, origin, handshake_response=response)
        if leftover:
            connection.data_received(leftover)
