"""A node's line to the other nodes: publish bytes on a topic, receive every topic in order.

Standalone and Sentinel use one Redis node with PUBLISH/SUBSCRIBE; a Cluster uses sharded pub/sub
(SPUBLISH/SSUBSCRIBE), one connection per master owning some topic, so throughput grows with the
shards. Messages of one topic travel over one connection, hence arrive in publish order.

Resilience contract:
- `publish` never waits: it queues and schedules one write (two loop turns later) of whatever
  has queued by then, without waiting for the replies to earlier writes (each connection counts
  them as they arrive). While Redis is unreachable, `publish` refuses at once (returns False)
  and counts the message in `stats.dropped`; nothing is replayed later.
- `published` waits until the message came back on this node's own subscription: Redis has it,
  has handed it to every subscribed node, and this node has delivered it (`redis_outbox`).
- A supervisor task owns the connections. When any of them fails, it drops them all, retries with
  capped exponential backoff (plus jitter), subscribes again and then runs `on_reconnected`, so
  delivery is back within one backoff step of Redis returning.
- Sentinel: the master's address is checked every `watch_interval` s, so the bus also follows a
  failover in which the old master stays up. Cluster: a slot moving away (the server's
  SUNSUBSCRIBE) makes the bus fetch the slot map again.
- Both hot paths use plain RESP2 connections handled in the transport's callbacks
  (`redis_wire`); `redis.asyncio` only finds the nodes (Sentinel, CLUSTER SLOTS).
- Each pub/sub connection is pinged when quiet, so a peer that vanishes without closing the TCP
  connection is noticed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from broadcaster.hub import redis_clients
from broadcaster.hub.redis_outbox import Outbox
from broadcaster.hub.redis_publisher import Publisher
from broadcaster.hub.redis_subscription import Subscription
from broadcaster.hub.redis_wire import ConnectionLost
from broadcaster.hub.tasks import cancel_and_wait
from broadcaster.scaling import Address, ScalingConfig

log = logging.getLogger("broadcaster.redis")

MessageHandler = Callable[[str, bytes], None]
ReconnectHandler = Callable[[], Awaitable[None]]
_FAILURES = (RedisError, OSError, TimeoutError)
_DROP_LOG_INTERVAL = 5.0


@dataclass(slots=True)
class BusStats:
    """Counters since the bus was created."""

    published: int = 0  # accepted by Redis (see `RedisBus.stats`)
    dropped: int = 0  # refused or lost because Redis was unreachable or the queue was full
    received: int = 0  # delivered to the message handler
    reconnects: int = 0  # successful connections after the first
    handler_errors: int = 0  # exceptions raised by the message handler


class _Lost(Exception):
    """A connection needs to be rebuilt (the reason is the message)."""


@dataclass(slots=True)
class _Link:
    """One Redis data node: a connection to publish on and one subscribed to its topics."""

    address: Address
    publisher: Publisher
    subscription: Subscription


class RedisBus:
    """Publish and receive cross-node messages on `topics` (see the module for the contract).

    `on_message(topic, payload)` is called synchronously, in order per topic, for every message
    on `topics`, including this node's own; it must not block, and its exceptions are logged.
    Payloads of different nodes must differ (the hub's envelopes carry their origin): the bus
    recognises its own messages coming back by their bytes.
    """

    def __init__(self, config: ScalingConfig, topics: Sequence[str], on_message: MessageHandler,
                 *, on_reconnected: ReconnectHandler | None = None, node_id: str | None = None,
                 max_queue: int = 10_000, batch: int = 512, backoff_initial: float = 0.05,
                 backoff_max: float = 2.0, ping_after: float = 5.0,
                 watch_interval: float = 2.0) -> None:
        if not topics:
            raise ValueError("a bus needs at least one topic")
        self.config = config
        self.topics = tuple(topics)
        self._topic_set = frozenset(self.topics)
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self._stats = BusStats()
        self._on_message = on_message
        self._on_reconnected = on_reconnected
        self._max_queue = max_queue
        self._backoff = (backoff_initial, backoff_max)
        self._ping_after, self._watch_interval = ping_after, watch_interval
        self._out = Outbox(batch)
        self._write_due = False  # a write is scheduled
        self._connected = asyncio.Event()
        self._route: dict[str, _Link] = {}
        self._links: list[_Link] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._dropped_in_outage = 0
        self._dropped_unlogged, self._dropped_logged_at = 0, -_DROP_LOG_INTERVAL
        self._known: tuple[Address, ...] = ()
        self._extra = {"node_id": self.node_id, "mode": config.mode, "prefix": config.prefix}

    @property
    def connected(self) -> bool:
        """True while subscribed and publishing is possible."""
        return self._connected.is_set()

    @property
    def stats(self) -> BusStats:
        """Counters since the bus was created."""
        self._stats.published = self._out.acknowledged
        return self._stats

    @property
    def pending(self) -> int:
        """Messages queued or written and unanswered (for back-pressure and metrics)."""
        return self._out.pending

    def start(self) -> None:
        """Start connecting in the background; see `wait_connected`."""
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"redis-bus-{self.node_id}")

    async def wait_connected(self, within: float) -> bool:
        """Wait until subscribed, at most `within` s; returns whether it is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), within)
        return self.connected

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue `payload` for `topic` without waiting; False (and counted) if refused.

        Raises ValueError for a topic the bus was not made with (a programming error).
        """
        if not self._accepts(topic):
            return False
        self._out.add(topic, payload, None)
        self._schedule_write()
        return True

    async def published(self, topic: str, payload: bytes) -> bool | None:
        """`publish`, then wait until the message came back from Redis: see `publish_echoed`;
        None if refused."""
        echoed = self.publish_echoed(topic, payload)
        return None if echoed is None else await echoed

    def publish_echoed(self, topic: str, payload: bytes) -> asyncio.Future[bool] | None:
        """`publish`, with a future done once the message came back from Redis (and went
        through `on_message` here): True if it did, False if it was lost; None if refused.
        A caller that waits for it before publishing the next message keeps its order across
        nodes (another node's later message cannot reach Redis first). No timer per call: a
        message not back within 2 x `config.timeout` makes the bus reconnect, which settles it
        as lost."""
        if not self._accepts(topic):
            return None
        waiter = self._out.waiter(time.monotonic() + 2 * self.config.timeout)
        self._out.add(topic, payload, waiter)
        self._schedule_write()
        return waiter.join()

    def _accepts(self, topic: str) -> bool:
        if topic not in self._topic_set:
            raise ValueError(f"{topic!r} is not one of this bus's topics")
        if not self._connected.is_set() or self._out.pending >= self._max_queue:
            self._drop(1, "Redis unreachable" if not self.connected else "publish queue full")
            return False
        return True

    async def flush(self, within: float) -> bool:
        """Wait until everything queued has been handed to Redis (or dropped), at most
        `within` s; returns whether the queue is empty."""
        deadline = time.monotonic() + within
        while self._out.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return not self._out.pending

    async def close(self) -> None:
        """Stop the supervisor and close every connection; queued messages are dropped."""
        self._closing = True
        task, self._supervisor = self._supervisor, None
        if task is None:
            return
        await cancel_and_wait(task)

    # -- supervision ----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt, ever_connected = 0, False
        while not self._closing:
            try:
                links = await asyncio.wait_for(self._connect(), self.config.timeout * 2)
            except Exception as exc:  # whatever went wrong, keep trying: the node must survive
                delay = min(self._backoff[1], self._backoff[0] * 2 ** attempt)
                delay *= random.uniform(0.8, 1.0)  # jitter: nodes do not reconnect in lockstep
                # Loud on the first failure and now and then, not on every attempt.
                level = logging.WARNING if attempt % 20 == 0 else logging.DEBUG
                log.log(level, "redis bus cannot connect; retrying", extra={
                    **self._extra, "error": repr(exc), "attempt": attempt + 1,
                    "retry_in_s": round(delay, 3)}, exc_info=not isinstance(exc, _FAILURES))
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if self._closing:
                await self._disconnect(links)
                return
            try:
                if ever_connected:
                    self._stats.reconnects += 1
                log.info("redis bus %s", "reconnected" if ever_connected else "connected",
                         extra={**self._extra, "nodes": [f"{h}:{p}" for h, p in self._known],
                                "attempts": attempt + 1,
                                "dropped_while_down": self._dropped_in_outage})
                self._dropped_in_outage = 0
                attempt = 0
                self._connected.set()
                reason = await self._run(links, notify=ever_connected)
                log.warning("redis bus lost its connection", extra={**self._extra,
                                                                    "reason": reason})
            finally:
                self._connected.clear()
                lost = self._out.lose_all()
                if lost:
                    self._drop(lost, "connection lost before Redis had them")
                await self._disconnect(links)
            ever_connected = True

    async def _connect(self) -> list[_Link]:
        """Resolve where the topics live, connect and subscribe; all or nothing."""
        if self.config.mode == "cluster":
            owners = await redis_clients.cluster_owners(self.config, self.topics, self._known)
        elif self.config.mode == "sentinel":
            owners = {await redis_clients.master_address(self.config): list(self.topics)}
        else:
            owners = {(self.config.host, self.config.port): list(self.topics)}
        links: list[_Link] = []
        try:
            for address, topics in owners.items():
                sharded = self.config.mode == "cluster"
                link = _Link(address, Publisher(self.config, address, sharded=sharded,
                                                on_acked=self._out.acked),
                             Subscription(self.config, address, topics, sharded=sharded,
                                          on_messages=self._deliver))
                links.append(link)
                await link.subscription.open()
                await link.publisher.open()
        except BaseException:
            await self._disconnect(links)
            raise
        self._known, self._links = tuple(owners), links
        self._route = {topic: link for link in links for topic in link.subscription.topics}
        return links

    async def _run(self, links: list[_Link], notify: bool) -> str:
        """Read, write and watch until something fails; returns why."""
        tasks = [asyncio.create_task(link.subscription.run(self._ping_after)) for link in links]
        tasks += [asyncio.create_task(link.publisher.run()) for link in links]
        tasks.append(asyncio.create_task(self._watch_echoes()))
        if self.config.mode == "sentinel":
            tasks.append(asyncio.create_task(self._watch_master(links[0].address)))
        if notify and self._on_reconnected is not None:
            tasks.append(asyncio.create_task(self._notify()))
        try:
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    tasks.remove(task)
                    if task.cancelled():
                        continue
                    error = task.exception()
                    if error is not None:
                        return repr(error)
        finally:
            for task in tasks:
                await cancel_and_wait(task)

    async def _notify(self) -> None:
        assert self._on_reconnected is not None
        try:
            await self._on_reconnected()
        except _FAILURES:
            raise
        except Exception:
            log.exception("on_reconnected failed", extra=self._extra)

    async def _disconnect(self, links: list[_Link]) -> None:
        self._route, self._links = {}, []
        for link in links:
            await link.subscription.close()
            await link.publisher.close()

    # -- the tasks of one connected period ------------------------------------------------------

    def _deliver(self, messages: list[tuple[str, bytes]]) -> None:
        """The messages of one read. This node's own are settled first: their callers resume
        in the next loop turn, and so answer before the writes to sockets queued below go out
        (a publisher's next request then arrives while those writes are under way, as with
        the in-process hub, so events keep arriving together and share one write per socket).
        """
        out = self._out
        if out.mine:
            for topic, payload in messages:
                mine = out.mine.get(topic)
                if mine and mine[0][0] == payload:
                    out.came_back(mine)
        self._stats.received += len(messages)
        handler = self._on_message
        for topic, payload in messages:
            try:
                handler(topic, payload)
            except Exception:
                self._stats.handler_errors += 1
                log.exception("bus message handler failed", extra=self._extra)

    def _schedule_write(self) -> None:
        if not self._write_due:
            self._write_due = True
            # One loop turn more: requests a burst of publishers sent a moment later (read in
            # the next turn) join this write instead of starting a group of their own, which
            # would stay apart from then on; events written together come back together and
            # share one write per socket.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._write)

    def _write(self) -> None:
        """Write what queued since the last write, one pipelined write per node (order within
        a node is the queue's order); the publishers count the replies."""
        self._write_due = False
        if not self._links:
            return  # connections gone meanwhile: `lose_all` settled the queue
        for batch in self._out.rounds():
            per_node: dict[Publisher, list[tuple[str, bytes]]] = {}
            for message in batch:
                per_node.setdefault(self._route[message[0]].publisher, []).append(message)
            token = self._out.written(len(batch), len(per_node))
            for publisher, messages in per_node.items():
                try:
                    publisher.publish(messages, token)
                except ConnectionLost as exc:  # its `run` raises it: the bus reconnects
                    publisher.fail(exc)

    async def _watch_echoes(self) -> None:
        """A message of this node that does not come back means the subscription is broken."""
        while True:
            await asyncio.sleep(self.config.timeout / 2)
            if self._out.overdue(time.monotonic()):
                raise _Lost("this node's own messages did not come back from Redis")

    async def _watch_master(self, address: Address) -> None:
        while True:
            await asyncio.sleep(self._watch_interval)
            try:
                now = await redis_clients.master_address(self.config)
            except _FAILURES as exc:  # Sentinels busy electing: the data link decides
                log.debug("sentinel check failed", extra={**self._extra, "error": repr(exc)})
                continue
            if now != address:
                raise _Lost(f"master moved from {address[0]}:{address[1]} to {now[0]}:{now[1]}")

    def _drop(self, count: int, reason: str) -> None:
        """Count lost messages; log at most every `_DROP_LOG_INTERVAL` s (a publish storm
        during an outage must not turn into a log storm)."""
        self._stats.dropped += count
        self._dropped_in_outage += count
        self._dropped_unlogged += count
        now = time.monotonic()
        if now - self._dropped_logged_at >= _DROP_LOG_INTERVAL:
            log.warning("redis bus dropped messages", extra={
                **self._extra, "reason": reason, "count": self._dropped_unlogged,
                "total_dropped": self._stats.dropped})
            self._dropped_logged_at, self._dropped_unlogged = now, 0
