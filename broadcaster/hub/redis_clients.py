"""Reaching Redis as a `ScalingConfig` says: plain clients to one node, where the master is
(Sentinel), which node owns which topic (Cluster), and a client for ordinary key commands.

Clients are made to fail fast: no built-in retries (the callers decide when to retry) and
connect/command timeouts from the configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisError

from broadcaster.scaling import Address, ScalingConfig


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def node_kwargs(config: ScalingConfig) -> dict[str, Any]:
    """Keyword arguments for a `redis.asyncio.Redis` talking to one data node."""
    kwargs: dict[str, Any] = {
        "username": config.username,
        "password": config.password,
        "socket_connect_timeout": config.timeout,
        "socket_timeout": config.timeout,
        "retry": _no_retry(),
        "ssl": config.tls,
    }
    if config.mode != "cluster":
        kwargs["db"] = config.db
    return kwargs


def node_client(config: ScalingConfig, address: Address) -> Redis:
    """A client of the data node at `address` (no pool sharing with any other client)."""
    host, port = address
    return Redis(host=host, port=port, **node_kwargs(config))


def _sentinel(config: ScalingConfig) -> Sentinel:
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": config.timeout,
        "socket_timeout": config.timeout,
        "retry": _no_retry(),
        "ssl": config.tls,
    }
    if config.sentinel_password is not None:
        sentinel_kwargs["password"] = config.sentinel_password
    if config.sentinel_username is not None:
        sentinel_kwargs["username"] = config.sentinel_username
    return Sentinel(list(config.sentinels),  # type: ignore[no-untyped-call]
                    sentinel_kwargs=sentinel_kwargs, **node_kwargs(config))


async def master_address(config: ScalingConfig) -> Address:
    """Where the Sentinels say the master of `config.sentinel_master` is now.

    Raises `RedisError` (MasterNotFoundError) when no Sentinel answers with a usable master.
    """
    sentinel = _sentinel(config)
    try:
        host, port = await sentinel.discover_master(config.sentinel_master)
        return str(host), int(port)
    finally:
        for client in sentinel.sentinels:
            await client.aclose()


def _masters_from_slots(reply: Any, seed: Address) -> list[tuple[int, int, Address]]:
    """(first slot, last slot, master) from a raw CLUSTER SLOTS reply."""
    ranges = []
    for entry in reply:
        first, last, master = int(entry[0]), int(entry[1]), entry[2]
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        ranges.append((first, last, (host or seed[0], int(master[1]))))
    return ranges


async def cluster_owners(config: ScalingConfig, topics: Sequence[str],
                         seeds: Iterable[Address] = ()) -> dict[Address, list[str]]:
    """The master owning each topic's slot, asking the configured nodes (then `seeds`) in turn.

    Raises `RedisError` when no node answers or some topic's slot has no owner.
    """
    last_error: Exception | None = None
    for seed in (*config.cluster_nodes, *seeds):
        client = node_client(config, seed)
        try:
            reply = await client.execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER", "SLOTS", NEVER_DECODE=True)
        except (RedisError, OSError) as exc:
            last_error = exc
            continue
        finally:
            await client.aclose()
        ranges = _masters_from_slots(reply, seed)
        owners: dict[Address, list[str]] = {}
        for topic in topics:
            slot = key_slot(topic.encode())
            owner = next((m for first, last, m in ranges if first <= slot <= last), None)
            if owner is None:
                last_error = RedisError(f"slot {slot} of {topic} has no master")
                break
            owners.setdefault(owner, []).append(topic)
        else:
            return owners
    raise RedisError(f"no cluster node gave a complete slot map: {last_error}")


def command_client(config: ScalingConfig) -> Redis | RedisCluster:
    """A client for ordinary key commands: it follows the master (Sentinel) or the slot owners
    (Cluster) by itself on each new connection."""
    if config.mode == "sentinel":
        client: Redis = _sentinel(config).master_for(config.sentinel_master, redis_class=Redis)
        return client
    if config.mode == "cluster":
        kwargs = node_kwargs(config)
        kwargs.pop("retry")
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in config.cluster_nodes],
                            **kwargs)
    return node_client(config, (config.host, config.port))
