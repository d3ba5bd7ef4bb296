"""What every connection on one node shares: apps, the hub, settings, live connections.

A leaf of the server package: the connection classes import it, never the other way round. What
the node needs of a connection is stated here as a structural type (`LiveSocket`, `HttpPeer`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from broadcaster.hub.base import Hub
from broadcaster.protocol.apps import App, AppRegistry
from broadcaster.protocol.connection import PusherConnection
from broadcaster.protocol.errors import PusherError
from broadcaster.protocol.rate_limit import TokenBucket
from broadcaster.server.eager import run_eagerly

log = logging.getLogger("broadcaster.node")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Node-wide limits (per-app ones live on `App`)."""

    max_request_size: int = 1_048_576
    max_write_buffer: int = 2_097_152
    http_idle_timeout: float = 60.0
    close_timeout: float = 5.0


class LiveSocket(Protocol):
    """A WebSocket connection as the node sees it (sweeps, shutdown, write coalescing)."""

    transport: asyncio.Transport
    app: App | None
    pusher: PusherConnection | None
    last_seen: float  # loop time of the last bytes received
    pinged: bool  # a ping went out and nothing came back since

    def flush(self) -> None:
        """Write everything queued for the socket."""

    def ping(self) -> None:
        """Ask an idle client for a sign of life."""

    def close_with(self, error: PusherError) -> None:
        """Send `error` and close with its code."""

    def closing_for(self, now: float) -> float | None:
        """Seconds since closing began, or None while open."""


class HttpPeer(Protocol):
    """An HTTP connection as the idle sweep and shutdown see it."""

    transport: asyncio.Transport | None
    busy: bool  # a request is being answered: never idle
    last_active: float


class Corker:
    """Coalesces writes: connections with queued frames are flushed once per loop iteration,
    so a burst of events costs one `write` (and one syscall) per socket, not one per event."""

    __slots__ = ("_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[LiveSocket] = []

    def add(self, connection: LiveSocket) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(connection)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for connection in pending:
            connection.flush()


class NodeCounters:
    """Plain integers bumped on the I/O paths and read by the metrics collector at scrape time.

    Each is one addition per message in, per reply or per HTTP request; fan-out deliveries are
    counted by the hub once per publish (`Hub.delivered`), never once per recipient.
    """

    __slots__ = ("bytes_in", "bytes_out", "http", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0  # direct replies; fan-out is in Hub.delivered
        self.bytes_out = 0
        self.http: dict[tuple[str, int], int] = {}  # (route, status) -> requests


@dataclass(eq=False)
class NodeState:
    """Shared by every connection of one server."""

    apps: AppRegistry
    hub: Hub
    limits: ServerLimits
    loop: asyncio.AbstractEventLoop
    debug: bool = False
    accepting: bool = True
    corker: Corker = field(init=False)
    websockets: dict[str, LiveSocket] = field(default_factory=dict)
    http: set[HttpPeer] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    tls: bool = False
    path_prefix: str = ""
    counters: NodeCounters = field(default_factory=NodeCounters)
    api_limiters: dict[str, TokenBucket] = field(default_factory=dict)  # app id -> bucket

    def __post_init__(self) -> None:
        self.corker = Corker(self.loop)

    def spawn_or_run(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` now; if it has to wait, let it finish in the background (kept referenced)."""
        try:
            done, task = run_eagerly(coro)
        except Exception:
            log.exception("background work failed")
            return
        if not done:
            assert isinstance(task, asyncio.Task)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
