"""`SharedState` in Redis, for several app processes (standalone, Sentinel or Cluster).

Every key is `{<prefix>:chat}:…`: the braces put them all in one Cluster slot, so one MGET can
read the stops and tokens of every reply a process streams. Times come from the Redis server
(`TIME` inside the scripts), so the processes' clocks need not agree.

Cross-process signals are keys the streaming process polls (`watch`, one MGET per poll for all
of its replies), not pub/sub: one round trip per process per poll whatever the number of
replies, nothing when idle, no subscriber connection to lose, and it works alike on Cluster.

Holds (a user's running replies) and `reply:<id>` (who streams a reply) are leases renewed by
the process that holds them, so a process that dies frees them within `LEASE_SECONDS`.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from app.shared_state import Limit, SharedStateUnavailable, Signals
from broadcaster.hub.redis_clients import command_client
from broadcaster.scaling import ScalingConfig

T = TypeVar("T")
LEASE_SECONDS = 60.0
STOP_SECONDS = 60.0
TOKEN_SECONDS = 3600.0

# KEYS[1]: the hits (sorted set, score = ms); ARGV: limit, window ms, unique member suffix.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
# KEYS[1]: the user's holds (sorted set, score = lease end in ms); ARGV: limit, lease ms, hold.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# KEYS: holds keys then reply keys; ARGV: lease ms, the number of holds keys, their members.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local holds = tonumber(ARGV[2])
for i = 1, #KEYS do
  if i <= holds then
    redis.call('ZADD', KEYS[i], 'XX', now + lease, ARGV[2 + i])
    redis.call('PEXPIRE', KEYS[i], lease)
  else
    redis.call('PEXPIRE', KEYS[i], lease)
  end
end
return 0
"""


class RedisState:
    """The shared state of every app process configured with the same Redis and prefix."""

    shared = True

    def __init__(self, config: ScalingConfig, client: Redis | RedisCluster | None = None) -> None:
        self._client = client if client is not None else command_client(config)
        self._base = "{" + config.prefix + ":chat}"
        self._process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._holds: dict[str, int] = {}  # hold -> user id, renewed while held
        self._streaming: set[int] = set()
        self._renewed = time.monotonic()

    def _key(self, *parts: object) -> str:
        return ":".join((self._base, *map(str, parts)))

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except (RedisError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def _script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        # EVAL rather than EVALSHA: a script is a few hundred bytes, and a restarted Redis
        # (empty script cache) needs no special path.
        return await self._call(
            lambda: self._client.eval(source, len(keys), *keys, *args))

    async def hit(self, limit: Limit, key: str) -> int | None:
        wait = int(await self._script(
            _HIT, [self._key("limit", limit.name, key)],
            [limit.limit, int(limit.window_seconds * 1000), uuid.uuid4().hex]))
        return wait or None

    async def hold_reply(self, user_id: int, limit: int) -> str | None:
        hold = f"{self._process}:{uuid.uuid4().hex[:8]}"
        held = await self._script(_HOLD, [self._key("holds", user_id)],
                                  [limit, int(LEASE_SECONDS * 1000), hold])
        if not int(held):
            return None
        self._holds[hold] = user_id
        return hold

    async def release_reply(self, user_id: int, hold: str) -> None:
        self._holds.pop(hold, None)
        await self._call(lambda: self._client.zrem(self._key("holds", user_id), hold))

    async def streaming_here(self, message_id: int) -> None:
        self._streaming.add(message_id)
        await self._call(lambda: self._client.set(
            self._key("reply", message_id), self._process, px=int(LEASE_SECONDS * 1000)))

    async def stream_ended(self, message_id: int) -> None:
        self._streaming.discard(message_id)
        await self._call(lambda: self._client.delete(
            self._key("reply", message_id), self._key("stop", message_id)))

    async def streaming_anywhere(self, message_ids: Iterable[int]) -> set[int]:
        ids = list(message_ids)
        if not ids:
            return set()
        owners = await self._call(lambda: self._client.mget(
            [self._key("reply", m) for m in ids]))
        return {m for m, owner in zip(ids, owners, strict=True) if owner is not None}

    async def request_stop(self, message_id: int, reason: str | None) -> bool:
        if not await self._call(lambda: self._client.exists(self._key("reply", message_id))):
            return False
        await self._call(lambda: self._client.set(
            self._key("stop", message_id), json.dumps({"reason": reason}),
            px=int(STOP_SECONDS * 1000)))
        return True

    async def retarget(self, conversation_id: int, token: str) -> None:
        await self._call(lambda: self._client.set(
            self._key("token", conversation_id), token, px=int(TOKEN_SECONDS * 1000)))

    async def watch(self, message_ids: Iterable[int], conversation_ids: Iterable[int]) -> Signals:
        messages, conversations = list(message_ids), list(conversation_ids)
        signals = Signals()
        if time.monotonic() - self._renewed >= LEASE_SECONDS / 4:
            await self._renew()
        if not messages and not conversations:
            return signals
        keys = [self._key("stop", m) for m in messages]
        keys += [self._key("token", c) for c in conversations]
        values = await self._call(lambda: self._client.mget(keys))
        for message_id, value in zip(messages, values[: len(messages)], strict=True):
            if value is not None:
                signals.stops[message_id] = json.loads(value)["reason"]
        for conversation_id, value in zip(conversations, values[len(messages):], strict=True):
            if value is not None:
                signals.tokens[conversation_id] = value.decode() if isinstance(
                    value, bytes) else str(value)
        return signals

    async def _renew(self) -> None:
        self._renewed = time.monotonic()
        holds = list(self._holds.items())
        keys = [self._key("holds", user_id) for _, user_id in holds]
        keys += [self._key("reply", m) for m in self._streaming]
        if keys:
            await self._script(_RENEW, keys, [int(LEASE_SECONDS * 1000), len(holds),
                                              *(hold for hold, _ in holds)])

    async def aclose(self) -> None:
        await self._client.aclose()
