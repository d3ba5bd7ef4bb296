"""The running server: the listening socket, the liveness sweep and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from broadcaster.hub.base import Hub
from broadcaster.hub.memory import MemoryHub
from broadcaster.protocol.apps import AppRegistry
from broadcaster.protocol.errors import PongNotReceived, ServerClosing
from broadcaster.protocol.liveness import Liveness, check_liveness
from broadcaster.server.http_connection import HttpConnection
from broadcaster.server.state import NodeState, ServerLimits
from broadcaster.server.webhooks import WebhookDispatcher
from broadcaster.server.websocket import encode_text_frame

log = logging.getLogger("broadcaster")

CLIENT_CLOSE_WAIT = 2.0  # seconds given to clients to answer the 4200 close frame


class BroadcastServer:
    """One broadcaster node serving WebSockets and the HTTP API on one host:port.

    With `ssl_context` the port speaks only TLS (wss and https); `path_prefix` (normalized, e.g.
    `/ws`) puts every route under it.
    """

    def __init__(self, apps: AppRegistry, *, limits: ServerLimits | None = None,
                 hub: Hub | None = None, debug: bool = False,
                 ssl_context: ssl.SSLContext | None = None, path_prefix: str = "",
                 reuse_port: bool = False) -> None:
        self.apps = apps
        self.ssl_context = ssl_context
        self.path_prefix = path_prefix
        self.reuse_port = reuse_port  # several processes share the port (serve --workers)
        self.limits = limits or ServerLimits()
        self._hub = hub
        self.debug = debug
        self.node: NodeState | None = None
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.webhooks: WebhookDispatcher | None = None  # when some app has webhooks

    async def start(self, host: str, port: int) -> None:
        """Bind and start serving; raises OSError when the address is in use."""
        loop = asyncio.get_running_loop()
        hub = self._hub or MemoryHub(encode_text_frame)
        if any(app.webhooks for app in self.apps):
            self.webhooks = WebhookDispatcher(self.apps)
            self.webhooks.start()
            hub.observer = self.webhooks.record
        self.node = NodeState(self.apps, hub, self.limits, loop, debug=self.debug,
                              tls=self.ssl_context is not None, path_prefix=self.path_prefix)
        node = self.node
        self._server = await loop.create_server(lambda: HttpConnection(node), host, port,
                                                reuse_address=True, backlog=4096,
                                                reuse_port=self.reuse_port or None,
                                                ssl=self.ssl_context)
        self._sweeper = loop.create_task(self._sweep_forever())

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _sweep_interval(self) -> float:
        shortest = min((min(a.ping_interval, a.pong_timeout) for a in self.apps), default=30)
        interval = max(0.5, shortest / 4)
        if any(a.subscription_count or a.user_authentication_timeout for a in self.apps):
            # Held-back subscription counts are due 5 s after the last one, and sign-in
            # deadlines should not overrun by much: look every second.
            interval = min(interval, 1.0)
        return interval

    async def _sweep_forever(self) -> None:
        interval = self._sweep_interval()
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:
                log.exception("liveness sweep failed")

    def sweep(self) -> None:
        """Ping idle connections, close silent ones with 4201 and ones not signed in within the
        app's `user_authentication_timeout` with 4009, run the hub's housekeeping (held-back
        subscription counts, expired cache entries), drop idle HTTP keep-alives."""
        node = self.node
        assert node is not None
        now = node.loop.time()
        for connection in list(node.websockets.values()):
            closing = connection.closing_for(now)
            if closing is not None:
                if closing > self.limits.close_timeout:
                    connection.transport.abort()
                continue
            app = connection.app
            if app is None:  # refused at connect: already closing, handled above
                continue
            verdict = check_liveness(now, connection.last_seen, connection.pinged,
                                     app.ping_interval, app.pong_timeout)
            if verdict is Liveness.PING:
                connection.ping()
            elif verdict is Liveness.DEAD:
                connection.close_with(PongNotReceived("Pong reply not received in time"))
            elif connection.pusher is not None:
                overdue = connection.pusher.signin_overdue(now)
                if overdue is not None:
                    connection.close_with(overdue)
        node.spawn_or_run(node.hub.housekeeping())
        for http in list(node.http):
            if not http.busy and now - http.last_active > self.limits.http_idle_timeout:
                assert http.transport is not None
                http.transport.close()

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting (readiness turns 503), ask every client to reconnect elsewhere (4200),
        then let pending webhooks go out; everything within `grace` seconds."""
        node = self.node
        if self._server is None or node is None:
            return
        started = time.monotonic()
        node.accepting = False
        self._server.close()
        if self._sweeper:
            self._sweeper.cancel()
        for connection in list(node.websockets.values()):
            connection.close_with(ServerClosing("Server is shutting down; reconnect"))
        # Clients answer the close frame within milliseconds; the cap leaves the rest of the
        # grace period to the webhooks their departure (channel_vacated...) just queued.
        clients_deadline = started + min(grace, CLIENT_CLOSE_WAIT)
        while node.websockets and time.monotonic() < clients_deadline:
            await asyncio.sleep(0.05)
        for connection in list(node.websockets.values()):
            connection.transport.abort()
        for http in list(node.http):
            if http.transport is not None:
                http.transport.close()
        await asyncio.sleep(0)
        await self._close_webhooks(max(0.0, started + grace - time.monotonic()))

    async def _close_webhooks(self, grace: float) -> None:
        """Flush the webhook dispatcher within `grace` seconds, when some app has webhooks."""
        if self.webhooks is None:
            return
        try:
            await asyncio.wait_for(self.webhooks.close(grace), grace + 1.0)
        except TimeoutError:
            log.warning("webhooks not flushed within the shutdown grace period",
                        extra={"grace": grace})
        except Exception:
            log.exception("closing webhooks failed")
