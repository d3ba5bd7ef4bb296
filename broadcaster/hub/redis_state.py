"""The cluster's shared state in Redis: typed calls over the scripts of `redis_scripts` and the
plain reads the HTTP API needs. No local state, no events: the hub decides what to do with the
answers. Every method raises `RedisError`/`OSError`/`TimeoutError` when Redis fails.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster

from broadcaster.hub import redis_scripts
from broadcaster.protocol.encoding import dump_json, parse_json
from broadcaster.protocol.presence import Member
from broadcaster.scaling import ScalingConfig

T = TypeVar("T")

# A throttled subscription count goes out at most this often per channel, cluster-wide.
COUNT_THROTTLE_MS = 5000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Joined:
    """The answer of a join: `full` (refused), else the channel's subscriptions in the
    cluster, whether it was the user's first connection anywhere, and the roster."""

    full: bool
    total: int = 0
    first: bool = False
    roster: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Dropped:
    """What removing a node's share decided."""

    vacated: list[str]
    removed: list[tuple[str, str]]  # (channel, user) whose last connection it was
    offline: list[str]
    counts: dict[str, int]  # channels still occupied -> their subscriptions


@dataclass(frozen=True, slots=True)
class Registered:
    """What writing a node's share decided (counters that went up from zero), net of what
    removing the share it replaced decided."""

    occupied: list[str]
    added: list[tuple[str, str]]  # (channel, user) now present, and not before
    online: list[str]
    gone: list[tuple[str, str]] = field(default_factory=list)  # present before, not any more
    held: bool = False  # Redis still had this node's share (it neither lost it nor dropped it)


class SharedState:
    """Shared state of one deployment for node `node_id`, over `client` (not closed here)."""

    def __init__(self, config: ScalingConfig, client: Redis | RedisCluster, node_id: str) -> None:
        self.config, self.node_id = config, node_id
        self.client = client
        self._join = client.register_script(redis_scripts.JOIN)
        self._leave = client.register_script(redis_scripts.LEAVE)
        self._connections = client.register_script(redis_scripts.CONNECTIONS)
        self._sign = client.register_script(redis_scripts.SIGN)
        self._node_state = client.register_script(redis_scripts.NODE_STATE)

    def base(self, app_id: str) -> str:
        """The base key of an app: every key of the app starts with it and shares its slot."""
        return f"{self.config.prefix}:{{{app_id}}}"

    async def _timed(self, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, self.config.timeout)

    async def _run(self, script: Any, app_id: str, *args: Any) -> Any:
        return await self._timed(script(keys=[self.base(app_id)], args=[self.node_id, *args]))

    # -- changes --------------------------------------------------------------------------------

    async def connections(self, app_id: str, delta: int) -> int:
        """Count a connection in or out; returns the app's connections in the cluster."""
        return int(await self._run(self._connections, app_id, delta))

    async def join(self, app_id: str, channel: str, member: Member | None,
                   max_members: int) -> Joined:
        if member is None:
            reply = await self._run(self._join, app_id, channel, "0", "", "", 0)
        else:
            reply = await self._run(self._join, app_id, channel, "1", member.user_id,
                                    dump_json(member.user_info), max_members)
        if int(reply[0]) < 0:
            return Joined(full=True)
        roster = None
        if len(reply) > 2:
            flat = reply[2]
            roster = {_text(flat[i]): parse_json(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Joined(False, int(reply[0]), bool(int(reply[1])), roster)

    async def leave(self, app_id: str, channel: str, member: Member | None) -> tuple[int, bool]:
        """(subscriptions left in the cluster, or -1 if Redis did not know the channel;
        whether it was the member's last connection anywhere)."""
        reply = await self._run(self._leave, app_id, channel, "0" if member is None else "1",
                                "" if member is None else member.user_id)
        return int(reply[0]), bool(int(reply[1]))

    async def sign(self, app_id: str, user_id: str, delta: int,
                   watchlist: tuple[str, ...] = ()) -> tuple[int, list[str]]:
        """(the user's signed-in connections now, -1 if unknown; watched users online)."""
        reply = await self._run(self._sign, app_id, user_id, delta, *watchlist)
        online = [uid for uid, flag in zip(watchlist, reply[1], strict=False) if int(flag)]
        return int(reply[0]), online

    async def drop_node(self, app_id: str, node_id: str) -> Dropped:
        """Remove everything `node_id` contributed to `app_id`."""
        reply = await self._timed(self._node_state(keys=[self.base(app_id)],
                                                   args=[node_id, "drop"]))
        vacated, removed, offline, changed = reply
        return Dropped([_text(c) for c in vacated],
                       [(_text(removed[i]), _text(removed[i + 1]))
                        for i in range(0, len(removed), 2)],
                       [_text(u) for u in offline],
                       {_text(changed[i]): int(changed[i + 1]) for i in range(0, len(changed), 2)})

    async def register(self, app_id: str, snapshot: dict[str, Any]) -> Registered:
        """Replace this node's share of `app_id` with `snapshot` (see `LocalState.snapshot`);
        returns what adding it decided."""
        occupied, added, online, gone, held = await self._run(
            self._node_state, app_id, "register", json.dumps(snapshot))
        return Registered([_text(c) for c in occupied], _pairs(added),
                          [_text(u) for u in online], _pairs(gone), bool(held))

    async def count_send_allowed(self, app_id: str, channel: str) -> bool:
        """Whether a throttled subscription count may go out now (once per 5 s, cluster-wide)."""
        key = f"{self.base(app_id)}:count-sent:{channel}"
        return bool(await self._timed(self.client.set(key, "1", px=COUNT_THROTTLE_MS, nx=True)))

    async def cache(self, app_id: str, channel: str, text: str, ttl: int) -> None:
        await self._timed(self.client.set(f"{self.base(app_id)}:cache:{channel}", text,
                                           px=ttl * 1000))

    # -- reads ----------------------------------------------------------------------------------

    async def cached(self, app_id: str, channel: str) -> tuple[str, float] | None:
        """(frame text, seconds left) of a cache channel's last event, if any."""
        key = f"{self.base(app_id)}:cache:{channel}"
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        text, ttl = await self._timed(pipe.execute())
        if text is None or int(ttl) <= 0:
            return None
        return _text(text), int(ttl) / 1000

    async def channel_counts(self, app_id: str) -> dict[str, int]:
        flat = await self._timed(self.client.hgetall(f"{self.base(app_id)}:channels"))
        return {_text(name): int(count) for name, count in flat.items()}

    async def subscriptions(self, app_id: str, channel: str) -> int:
        count = await self._timed(self.client.hget(f"{self.base(app_id)}:channels", channel))
        return int(count or 0)

    async def member_counts(self, app_id: str, channels: list[str]) -> list[int]:
        if not channels:
            return []
        pipe = self.client.pipeline(transaction=False)
        for channel in channels:
            pipe.hlen(f"{self.base(app_id)}:members:{channel}")
        return [int(n) for n in await self._timed(pipe.execute())]

    async def members(self, app_id: str, channel: str) -> list[str]:
        ids = await self._timed(self.client.hkeys(f"{self.base(app_id)}:members:{channel}"))
        return [_text(uid) for uid in ids]

    async def rosters(self, app_id: str, channels: list[str]) -> list[dict[str, Any]]:
        """user_id -> user_info of each presence channel in `channels`, in one round trip."""
        if not channels:
            return []
        pipe = self.client.pipeline(transaction=False)
        for channel in channels:
            pipe.hgetall(f"{self.base(app_id)}:members:{channel}")
        return [{_text(uid): parse_json(info) for uid, info in flat.items()}
                for flat in await self._timed(pipe.execute())]

    async def connection_total(self, app_id: str) -> int:
        counts = await self._timed(self.client.hvals(f"{self.base(app_id)}:conns"))
        return sum(int(n) for n in counts)

    async def user_connections(self, app_id: str, user_id: str) -> int:
        count = await self._timed(self.client.hget(f"{self.base(app_id)}:users", user_id))
        return int(count or 0)


def _pairs(flat: list[Any]) -> list[tuple[str, str]]:
    return [(_text(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]
