"""Which nodes of a deployment are alive, and which died without saying goodbye.

Each node writes `prefix:nodes:{node_id}` with a TTL every `interval` seconds and records its id in
the sorted set `prefix:nodes` (score: the time of its first heartbeat, for the logs). A node whose
key has expired but whose id is still in the set is dead; `claim_dead` removes the id from the set
and tells exactly one caller (across all nodes) that it won the job of cleaning up after it.
Liveness uses Redis's own key expiry, so clocks on different machines do not need to agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from broadcaster.hub.tasks import cancel_and_wait
from broadcaster.scaling import ScalingConfig

log = logging.getLogger("broadcaster.redis")
_FAILURES = (RedisError, OSError, TimeoutError)


class NodeRegistry:
    """Heartbeats of this node (`node_id`) and the view of the others.

    `client` is any command client (see `redis_clients.command_client`); it is not closed here.
    `ttl` must exceed `interval` by enough to survive a missed beat or two.
    """

    def __init__(self, config: ScalingConfig, client: Redis | RedisCluster, node_id: str, *,
                 interval: float = 5.0, ttl: float = 15.0) -> None:
        if ttl <= interval:
            raise ValueError("ttl must be longer than the heartbeat interval")
        self.config, self.node_id = config, node_id
        self.interval, self.ttl = interval, ttl
        self._client = client
        self._set_key = config.key("nodes")
        self._task: asyncio.Task[None] | None = None
        self._extra = {"node_id": node_id, "prefix": config.prefix}

    def key(self, node_id: str) -> str:
        """The heartbeat key of `node_id`."""
        return self.config.key("nodes", node_id)

    async def beat(self) -> None:
        """Write this node's heartbeat once; raises `RedisError`/`OSError` on failure."""
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self.key(self.node_id), str(time.time()), px=int(self.ttl * 1000))
        pipe.zadd(self._set_key, {self.node_id: time.time()}, nx=True)
        await asyncio.wait_for(pipe.execute(), self.config.timeout)

    def start(self) -> None:
        """Heartbeat every `interval` s in the background until `stop`; failures are logged and
        the next beat tries again."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"heartbeat-{self.node_id}")

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop heartbeating; with `deregister`, remove this node at once (a clean shutdown)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if deregister:
            with contextlib.suppress(*_FAILURES):
                pipe = self._client.pipeline(transaction=False)
                pipe.delete(self.key(self.node_id))
                pipe.zrem(self._set_key, self.node_id)
                await asyncio.wait_for(pipe.execute(), self.config.timeout)

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.beat()
                if failing:
                    log.info("heartbeat written again", extra=self._extra)
                failing = False
            except _FAILURES as exc:
                if not failing:
                    log.warning("heartbeat failed", extra={**self._extra, "error": repr(exc)})
                failing = True
            await asyncio.sleep(self.interval)

    async def known(self) -> list[str]:
        """Every registered node id, alive or not yet cleaned up."""
        members = await asyncio.wait_for(self._client.zrange(self._set_key, 0, -1),
                                         self.config.timeout)
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def _alive_flags(self, ids: list[str]) -> list[bool]:
        pipe = self._client.pipeline(transaction=False)
        for node_id in ids:
            pipe.exists(self.key(node_id))
        replies = await asyncio.wait_for(pipe.execute(), self.config.timeout)
        return [bool(reply) for reply in replies]

    async def live_nodes(self) -> list[str]:
        """Ids of the nodes whose heartbeat has not expired."""
        ids = await self.known()
        return [n for n, alive in zip(ids, await self._alive_flags(ids), strict=True) if alive]

    async def dead_nodes(self) -> list[str]:
        """Ids of registered nodes whose heartbeat expired (not yet claimed)."""
        ids = await self.known()
        return [n for n, alive in zip(ids, await self._alive_flags(ids), strict=True)
                if not alive]

    async def claim_dead(self, node_id: str) -> bool:
        """Take the cleanup of dead `node_id`: True for exactly one caller, and only while its
        heartbeat is absent. The winner must then remove what the dead node left behind."""
        if await asyncio.wait_for(self._client.exists(self.key(node_id)), self.config.timeout):
            return False
        removed = await asyncio.wait_for(self._client.zrem(self._set_key, node_id),
                                         self.config.timeout)
        if removed:
            log.warning("node declared dead", extra={**self._extra, "dead_node": node_id})
        return bool(removed)
