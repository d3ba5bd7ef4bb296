"""Keeping a node's share of the shared state right: heartbeats, taking over the cleanup of dead
nodes, and writing the local state back after Redis failed or lost its data.

- Every shared-state call goes through `guarded`: while Redis is unreachable it returns None at
  once (no waiting on timeouts), a failure is logged (rate-limited) and marks the node's share as
  stale, and no call runs while the share is being rewritten.
- `reregister` rewrites the share from `LocalState` in one script per app, after any call in
  flight finished, so what Redis holds for this node is exactly what its sockets are doing.
  It runs when the bus reconnects, when a call failed, and once at start. Then every node
  compares its sockets' presence rosters with Redis's (`RosterSync`), and, when Redis still
  held the old share, members who joined or left this node meanwhile are reported to webhooks,
  once (`announce_changes`).
- Every `interval` s the node heartbeats and looks for dead nodes; the one node whose
  `claim_dead` wins removes the dead node's share and announces the consequences.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from redis.exceptions import RedisError

from broadcaster.hub.node_registry import NodeRegistry
from broadcaster.hub.redis_announce import (
    announce_changes,
    announce_dropped,
    announce_registered,
)
from broadcaster.hub.redis_state import SharedState
from broadcaster.hub.tasks import cancel_and_wait

if TYPE_CHECKING:
    from broadcaster.hub.redis_hub import RedisHub

log = logging.getLogger("broadcaster.redis")
T = TypeVar("T")
_FAILURES = (RedisError, OSError, TimeoutError)
_LOG_INTERVAL = 5.0
_STALE_CHECK = 1.0  # seconds between checks that the share needs rewriting
# Shared-state calls running at once. The client's pool holds 100 connections and refuses
# beyond; a burst of connections (clients coming back after a restart) waits here instead.
MAX_CONCURRENT_CALLS = 64
_CLAIM_SETTLE = 1.0  # seconds between noticing we were claimed dead and registering again
# Seconds between writing the share back after an outage and reporting what changed meanwhile:
# the other nodes' buses subscribe again within one backoff step (2 s at most) of Redis being back.
_RESUBSCRIBE_SETTLE = 3.0


class NodeCare:
    """The background duties of `hub`'s node (see the module)."""

    def __init__(self, hub: RedisHub, *, heartbeat_interval: float,
                 heartbeat_ttl: float) -> None:
        self.hub = hub
        self.registry = NodeRegistry(hub.config, hub.state.client, hub.node_id,
                                     interval=heartbeat_interval, ttl=heartbeat_ttl)
        self.stale = True  # nothing registered yet
        self.failures = 0
        self.cleaned: list[tuple[str, float]] = []  # (dead node, seconds the cleanup took)
        self._inflight = 0
        self._closed = False
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)
        self._gate: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._announcing: set[asyncio.Task[None]] = set()
        self._failure_logged_at = -_LOG_INTERVAL
        self._extra = {"node_id": hub.node_id, "prefix": hub.config.prefix}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"node-care-{self.hub.node_id}")

    async def stop(self) -> None:
        """Stop the background loop and the heartbeat; from now on `guarded` answers None (a
        late leave must not subtract from counters the node's final drop already cleared).
        Calls in flight are given `timeout` s to finish."""
        self._closed = True
        for task in list(self._announcing):
            await cancel_and_wait(task)
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        deadline = time.monotonic() + self.hub.config.timeout
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def final(self, operation: Callable[[SharedState], Awaitable[T]]) -> T | None:
        """Run one last call after `stop` (the node removing its own share)."""
        if not self.hub.bus.connected:
            return None
        try:
            return await operation(self.hub.state)
        except _FAILURES as exc:
            log.warning("removing this node's share failed; the others will once its "
                        "heartbeat expires", extra={**self._extra, "error": repr(exc)})
            return None

    # -- guarded calls --------------------------------------------------------------------------

    async def guarded(self, operation: Callable[[SharedState], Awaitable[T]]) -> T | None:
        if self._closed or not self.hub.bus.connected:
            return None
        while self._gate is not None:
            await self._gate.wait()
        self._inflight += 1
        try:
            async with self._slots:
                return await operation(self.hub.state)
        except _FAILURES as exc:
            self.stale = True
            self.failures += 1
            now = time.monotonic()
            if now - self._failure_logged_at >= _LOG_INTERVAL:
                self._failure_logged_at = now
                log.warning("shared state unreachable; answering from this node's sockets",
                            extra={**self._extra, "error": repr(exc),
                                   "failures": self.failures})
            return None
        finally:
            self._inflight -= 1

    # -- re-registration ------------------------------------------------------------------------

    async def reregister(self, *, announce: bool = False) -> None:
        """Rewrite this node's share from its sockets; raises when Redis fails. With
        `announce`, members, channels and users that this brings back are announced (the
        other nodes had announced them gone)."""
        gate = asyncio.Event()
        while self._gate is not None:  # one rewrite at a time
            await self._gate.wait()
        self._gate = gate
        try:
            deadline = time.monotonic() + self.hub.config.timeout
            while self._inflight and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            started = time.monotonic()
            await self.registry.beat()
            local = self.hub.local
            for app_id, app in self.hub.apps.items():
                registered = await self.hub.state.register(app_id, local.snapshot(app_id))
                if announce:
                    announce_registered(self.hub, app, registered)
                elif registered.held and (registered.gone or registered.added):
                    task = asyncio.get_running_loop().create_task(
                        announce_changes(self.hub, app, registered, _RESUBSCRIBE_SETTLE))
                    self._announcing.add(task)
                    task.add_done_callback(self._announcing.discard)
            self.stale = False
            self.hub.rosters.registered()
            log.info("node state registered in redis", extra={
                **self._extra, "connections": sum(local.connections.values()),
                "channels": len(local.channels),
                "ms": round((time.monotonic() - started) * 1000, 1)})
        finally:
            self._gate = None
            gate.set()

    async def reregister_quietly(self, *, announce: bool = False) -> None:
        try:
            await self.reregister(announce=announce)
        except _FAILURES as exc:
            log.warning("registering node state failed; will retry",
                        extra={**self._extra, "error": repr(exc)})

    # -- the background loop --------------------------------------------------------------------

    async def _run(self) -> None:
        self.registry.start()
        try:
            next_check = time.monotonic() + self.registry.interval
            while True:
                await asyncio.sleep(_STALE_CHECK)
                if not self.hub.bus.connected:
                    continue
                if self.stale:
                    await self.reregister_quietly()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.registry.interval
                    try:
                        await self._clean_dead()
                    except _FAILURES as exc:
                        log.warning("dead node check failed",
                                    extra={**self._extra, "error": repr(exc)})
        finally:
            await self.registry.stop(deregister=False)

    async def _clean_dead(self) -> None:
        if self.hub.node_id not in await self.registry.known() and not self.stale:
            # Another node took us for dead (our heartbeat lapsed while Redis was reachable
            # for it): it removes our share right after claiming us, so give it a moment,
            # then write the share again and announce our members back.
            log.warning("this node was declared dead by another; registering again",
                        extra=self._extra)
            await asyncio.sleep(_CLAIM_SETTLE)
            await self.reregister_quietly(announce=True)
            return
        for dead in await self.registry.dead_nodes():
            if dead == self.hub.node_id:
                # Our own heartbeat lapsed (Redis was slow or away): we are alive, write it.
                await self.registry.beat()
                continue
            if not await self.registry.claim_dead(dead):
                continue
            started = time.monotonic()
            removed = 0
            for app in self.hub.apps.values():
                dropped = await self.hub.state.drop_node(app.id, dead)
                removed += len(dropped.removed)
                announce_dropped(self.hub, app, dropped)
            took = time.monotonic() - started
            self.cleaned.append((dead, took))
            log.warning("cleaned up after dead node", extra={
                **self._extra, "dead_node": dead, "members_removed": removed,
                "ms": round(took * 1000, 1)})
