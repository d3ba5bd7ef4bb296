"""One WebSocket connection: frames in through `ws_frames.FrameReader`, Pusher actions out.

This is the asyncio `Protocol` of the socket once the HTTP upgrade is done (the HTTP connection
hands the transport over), so an idle connection costs no task and no HTTP parser.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from broadcaster.protocol import frames
from broadcaster.protocol.admission import admission_refusal
from broadcaster.protocol.apps import App
from broadcaster.protocol.connection import (
    Close,
    Join,
    Leave,
    PusherConnection,
    Relay,
    Reply,
    SignIn,
)
from broadcaster.protocol.errors import (
    InvalidMessage,
    OverConnectionQuota,
    PusherError,
    SubscriptionError,
)
from broadcaster.server.eager import run_eagerly
from broadcaster.server.state import NodeState
from broadcaster.server.ws_frames import (
    BINARY,
    CLOSE,
    FAIL,
    INVALID_DATA,
    PING,
    PONG,
    TEXT,
    FrameReader,
    close_code,
    close_frame,
    server_frame,
)

log = logging.getLogger("broadcaster.ws")

_PING_FRAME = server_frame(PING)


def encode_text_frame(text: str) -> bytes:
    """A complete unmasked server text frame (FIN, opcode 1, RFC 6455 section 5.2); identical
    bytes for every recipient. Written out here because it is on every path out: the same bytes
    as websockets' `Frame.serialize(mask=False)` without building a frame object."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class WebSocketConnection(asyncio.Protocol):
    """A client socket speaking the Pusher protocol (and a hub `Subscriber`)."""

    __slots__ = (
        "_backlog", "_busy", "_close_sent", "_closing_since", "_eof", "_out", "_registered",
        "app", "last_seen", "node", "pinged", "pusher", "reader", "socket_id", "transport",
    )

    def __init__(self, node: NodeState, transport: asyncio.Transport, reader: FrameReader,
                 app: App | None, socket_id: str) -> None:
        self.node = node
        self.transport = transport
        self.reader = reader
        self.app = app
        self.socket_id = socket_id
        self.pusher: PusherConnection | None = None
        self.last_seen = node.loop.time()
        self.pinged = False
        # One queued frame is kept as the shared bytes object itself: allocating a list per
        # subscriber per event would feed the cyclic garbage collector, whose pauses dominate
        # the latency tail with thousands of subscribers.
        self._out: bytes | list[bytes] | None = None
        self._eof = False
        self._busy = False
        self._backlog: list[str] | None = None
        self._close_sent = False
        self._closing_since: float | None = None
        self._registered = False

    # -- opening ---------------------------------------------------------------------------

    def open(self, query: str, origin: str | None, handshake_response: bytes = b"") -> None:
        """Send the handshake response, check the app, protocol version, origin and quota;
        then greet or refuse."""
        if handshake_response:
            self._queue(handshake_response)
        # Every socket is swept, refused ones too: a client that never answers our close frame
        # is dropped after `close_timeout`.
        self.node.websockets[self.socket_id] = self
        self._run(self._open(query, origin))

    async def _open(self, query: str, origin: str | None) -> None:
        refusal = admission_refusal(self.app, query, origin, self.node.accepting)
        if refusal is not None:
            return self.close_with(refusal)
        app = self.app
        assert app is not None
        # Registered before the hub call: a socket that drops while a shared hub is still
        # counting it must be counted out again, or the app's connection count leaks.
        self._registered = True
        count = await self.node.hub.connect(app, self)
        if app.max_connections is not None and count > app.max_connections:
            return self.close_with(OverConnectionQuota("Application is over its connection quota"))
        self.pusher = PusherConnection(app, self.socket_id, self.node.loop.time())
        self.send_text(self.pusher.established())
        return None

    # -- bytes in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.node.loop.time()
        self.pinged = False
        self.node.counters.bytes_in += len(data)
        for opcode, payload in self.reader.feed(data):
            if opcode == TEXT:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    self._fail(close_frame(INVALID_DATA, "text frames must be UTF-8"))
                    return
                self._on_message(text)
            elif opcode == PING:
                if not self._close_sent:
                    self._queue(server_frame(PONG, payload))
            elif opcode == BINARY:
                self.send_text(InvalidMessage("Binary frames are not supported").to_frame())
            elif opcode == CLOSE:
                self._on_close(payload)
            elif opcode == FAIL:
                self._fail(server_frame(CLOSE, payload))

    def eof_received(self) -> bool | None:
        # The client is gone without a close frame: the transport closes (connection_lost).
        return None

    def _on_close(self, payload: bytes) -> None:
        """The client's close frame: answer it unless we started the closing, then end the TCP
        connection once queued frames are out (the server closes first, RFC 6455 7.1.1)."""
        if not self._close_sent:
            self._close_sent = True
            self._queue(close_frame(close_code(payload)))
        self._closing_since = self._closing_since or self.node.loop.time()
        self._end_after_flush()

    def _fail(self, frame: bytes) -> None:
        """Fail the connection (RFC 6455 7.1.7): a close frame with the status, then close."""
        if not self._close_sent:
            self._close_sent = True
            self._queue(frame)
        self._closing_since = self._closing_since or self.node.loop.time()
        self._end_after_flush()

    def _end_after_flush(self) -> None:
        self._eof = True
        if self._out is None:
            self.transport.close()

    def _on_message(self, text: str) -> None:
        self.node.counters.messages_in += 1
        if self._busy:
            if self._backlog is None:
                self._backlog = []
            self._backlog.append(text)
            return
        self._run(self._handle_message(text))

    async def _handle_message(self, text: str) -> None:
        pusher = self.pusher
        if pusher is None or self._closing_since is not None:
            return
        if self.node.debug:
            log.debug("frame in", extra={"socket_id": self.socket_id, "frame": text[:2000]})
        app = pusher.app
        hub = self.node.hub
        for action in pusher.receive(text, self.node.loop.time()):
            if isinstance(action, Reply):
                self.send_text(action.text)
            elif isinstance(action, Relay):
                await hub.publish(app, action.channel, action.text, self.socket_id)
                if action.lifecycle is not None:
                    hub.observer(app, action.lifecycle)
            elif isinstance(action, Join):
                try:
                    roster = await hub.join(app, action.channel, self, action.member)
                except SubscriptionError as exc:
                    self.send_text(exc.to_frame())
                    continue
                pusher.joined(action)
                data_text = "{}" if roster is None else frames.presence_data(roster)
                self.send_text(frames.subscription_succeeded(action.channel, data_text))
                await hub.subscribed(app, action.channel, self)
            elif isinstance(action, Leave):
                await hub.leave(app, action.channel, self, action.member)
            elif isinstance(action, SignIn):
                if action.previous is not None:
                    await hub.sign_out(app, self, action.previous)
                online = await hub.sign_in(app, self, action.user)
                self.send_text(frames.signin_success(action.user.user_data))
                if online:
                    self.send_text(frames.watchlist_events("online", online))
            elif isinstance(action, Close):
                self.close_with(action.error)

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a handler now; if it has to wait, hold later frames back until it is done."""
        try:
            done, task = run_eagerly(coro)
        except Exception:
            log.exception("handler failed", extra={"socket_id": self.socket_id})
            return
        if not done:
            assert isinstance(task, asyncio.Task)
            self._busy = True
            self.transport.pause_reading()
            task.add_done_callback(self._resume)

    def _resume(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("handler failed", exc_info=task.exception(),
                      extra={"socket_id": self.socket_id})
        self._busy = False
        if self.transport.is_closing():
            return
        self.transport.resume_reading()
        while self._backlog and not self._busy:
            self._run(self._handle_message(self._backlog.pop(0)))

    # -- bytes out -------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        if self.node.debug:
            log.debug("frame out", extra={"socket_id": self.socket_id, "frame": text[:2000]})
        frame = encode_text_frame(text)
        counters = self.node.counters
        counters.messages_out += 1
        counters.bytes_out += len(frame)
        self.send_frame(frame)

    def send_frame(self, frame: bytes) -> None:
        """Queue an encoded frame; it is written at the end of this loop iteration."""
        if self._closing_since is None:
            self._queue(frame)

    def _queue(self, chunk: bytes) -> None:
        out = self._out
        if out is None:
            self._out = chunk
            self.node.corker.add(self)
        elif isinstance(out, bytes):
            self._out = [out, chunk]
        else:
            out.append(chunk)

    def flush(self) -> None:
        """Write everything queued in one call; drop the client if it stopped reading."""
        out, self._out = self._out, None
        if out is None or self.transport.is_closing():
            return
        self.transport.write(out if isinstance(out, bytes) else b"".join(out))
        if self._eof:
            self.transport.close()
        elif self.transport.get_write_buffer_size() > self.node.limits.max_write_buffer:
            # Queueing more would grow memory without bound; the client reconnects with back-off.
            log.info("slow client dropped", extra={"socket_id": self.socket_id})
            self.transport.abort()

    # -- closing ---------------------------------------------------------------------------

    def ping(self) -> None:
        """Ask an idle client for a sign of life, at both the Pusher and the WebSocket level."""
        self.pinged = True
        self.send_text(frames.PING)
        if not self._close_sent:
            self._queue(_PING_FRAME)

    def close_with(self, error: PusherError) -> None:
        """Send `pusher:error`, then a close frame with the same code."""
        if self._closing_since is not None:
            return
        self.send_text(error.to_frame())
        if not self._close_sent:
            self._close_sent = True
            self._queue(close_frame(error.code, error.message[:120]))
        self._closing_since = self.node.loop.time()

    def closing_for(self, now: float) -> float | None:
        return None if self._closing_since is None else now - self._closing_since

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing_since = self._closing_since or self.node.loop.time()
        self._out = None
        self.node.websockets.pop(self.socket_id, None)
        if not self._registered:
            return
        self._registered = False
        self.node.spawn_or_run(self._cleanup())

    async def _cleanup(self) -> None:
        node = self.node
        app = self.app
        assert app is not None
        if self.pusher is not None:
            for leave in self.pusher.leave_all():
                await node.hub.leave(app, leave.channel, self, leave.member)
            if self.pusher.user is not None:
                await node.hub.sign_out(app, self, self.pusher.user)
        await node.hub.disconnect(app, self)
