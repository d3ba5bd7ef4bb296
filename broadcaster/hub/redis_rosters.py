"""Bringing what this node's sockets were told about presence rosters back in line with Redis,
after any node of the cluster (this one included) wrote its share again.

Why: member frames between nodes travel over pub/sub, which keeps nothing. Whatever was
announced while Redis was away (or while a node was cut off from it) reached the announcing
node's sockets only, and a Redis restarted empty forgot who was told what. But once every node
wrote its share back (`NodeCare.reregister`), Redis holds the cluster's roster again, and each
node knows what its own sockets were told (`LocalState` views). So each node compares the two
and tells its own sockets the difference (`LocalState.correct`): never anything through the
bus, so never twice, and no webhooks (those stay decided once per cluster, by a script).

When:
- After this node registered: `settle` s later (the other nodes reconnect within one backoff
  step, 2 s at most, and write their share right away; comparing earlier would announce their
  members gone, then back). It also tells the other nodes, with a RESYNC message per app.
- After another node's RESYNC: `peer_settle` s later (its share is in Redis already; the delay
  only gathers a burst), but never before this node's own settle is over.

A roster read is in flight while member frames keep arriving; a channel whose sockets were told
something meanwhile (a join, a member frame) is read again, as its frames are at least as new.
Contract: nothing here runs on the delivery path; a failed read leaves the views as they are
(the next registration, which follows any failure, schedules another check).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from broadcaster.hub.envelope import Envelope, Kind
from broadcaster.hub.local_state import LocalChannel
from broadcaster.hub.tasks import cancel_and_wait

if TYPE_CHECKING:
    from broadcaster.hub.redis_hub import RedisHub

log = logging.getLogger("broadcaster.redis")

# Seconds between this node writing its share and comparing: other nodes subscribe again and
# write theirs within one reconnection backoff step (2 s at most) of Redis being back.
SETTLE = 3.0
# Seconds between another node's RESYNC and comparing: gathers the RESYNCs of a burst.
PEER_SETTLE = 0.2
_BATCH = 256  # presence channels per roster read (one pipelined round trip)
_ROUNDS = 5  # reads of a channel whose sockets keep being told something during the read


class RosterSync:
    """Schedules and runs the comparisons of `hub`'s node (see the module)."""

    def __init__(self, hub: RedisHub, *, settle: float = SETTLE,
                 peer_settle: float = PEER_SETTLE) -> None:
        self.hub = hub
        self.settle, self.peer_settle = settle, peer_settle
        self.corrected = 0  # frames sent by corrections, for tests and logs
        self._due: float | None = None
        self._apps: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def registered(self) -> None:
        """This node wrote its share: tell the other nodes, compare after `settle`."""
        for app_id in self.hub.apps:
            self.hub.send(Envelope(self.hub.node_id, app_id, "", "", None, Kind.RESYNC))
        self._schedule(set(self.hub.apps), self.settle)

    def peer_registered(self, app_id: str) -> None:
        """Another node wrote its share of `app_id`: compare after `peer_settle`."""
        if app_id in self.hub.apps:
            self._schedule({app_id}, self.peer_settle)

    def _schedule(self, apps: set[str], delay: float) -> None:
        due = time.monotonic() + delay
        # Never earlier than a pending comparison: that one waits for this node's settle.
        self._due = due if self._due is None else max(self._due, due)
        self._apps |= apps
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"roster-sync-{self.hub.node_id}")

    async def stop(self) -> None:
        self._due = None
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while self._due is not None:
            wait = self._due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # the due time may have moved meanwhile: look again
                continue
            self._due = None
            apps, self._apps = self._apps, set()
            for app_id in sorted(apps):
                try:
                    await self.check(app_id)
                except Exception:  # a bug here must not stop later comparisons
                    log.exception("comparing presence rosters failed",
                                  extra={"node_id": self.hub.node_id, "app_id": app_id})

    async def check(self, app_id: str) -> int | None:
        """Compare every local presence channel of `app_id` with Redis and correct the
        sockets' views; returns the frames sent, None when Redis did not answer."""
        local = self.hub.local
        pending = sorted(name for name, state in local.app_channels(app_id).items()
                         if state.views)
        sent = 0
        for _ in range(_ROUNDS):
            if not pending:
                break
            again: list[str] = []
            for start in range(0, len(pending), _BATCH):
                batch = pending[start:start + _BATCH]
                done = await self._check_batch(app_id, batch)
                if done is None:
                    return None
                sent += done[0]
                again += done[1]
            pending = again
        if sent:
            self.corrected += sent
            log.info("presence rosters corrected after a registration",
                     extra={"node_id": self.hub.node_id, "app_id": app_id, "frames": sent})
        return sent

    async def _check_batch(self, app_id: str,
                           channels: list[str]) -> tuple[int, list[str]] | None:
        """(frames sent, channels to read again) for one read; None when Redis failed."""
        local = self.hub.local
        before = {name: _changes(local.channel(app_id, name)) for name in channels}
        rosters: list[dict[str, Any]] | None = await self.hub.shared(
            lambda state: state.rosters(app_id, channels))
        if rosters is None:
            return None
        sent, again = 0, []
        for name, roster in zip(channels, rosters, strict=True):
            now = _changes(local.channel(app_id, name))
            if now is None:
                continue  # nobody here any more
            if now != before[name]:
                again.append(name)  # told something newer than this read while it ran
                continue
            sent += local.correct(app_id, name, roster)
        return sent, again


def _changes(state: LocalChannel | None) -> int | None:
    return None if state is None else state.changes
