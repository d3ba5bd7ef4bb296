"""Node heartbeats: live nodes listed, a silent node detected and claimed exactly once."""

from __future__ import annotations

import asyncio

from broadcaster.hub.node_registry import NodeRegistry
from broadcaster.hub.redis_clients import command_client
from broadcaster.scaling import ScalingConfig
from tests.support.redis_servers import RedisClusterGroup, RedisServer


async def test_a_node_that_stops_heartbeating_is_detected_and_claimed_once(
        redis_server: RedisServer) -> None:
    config = ScalingConfig(port=redis_server.port, prefix="hb", timeout=1.0)
    client = command_client(config)
    nodes = {name: NodeRegistry(config, client, name, interval=0.2, ttl=0.8)
             for name in ("alpha", "beta", "gamma")}
    try:
        for registry in nodes.values():
            registry.start()
        await asyncio.sleep(0.3)
        watcher = nodes["alpha"]
        assert await watcher.live_nodes() == ["alpha", "beta", "gamma"]
        assert await watcher.dead_nodes() == []
        assert await client.ttl("hb:nodes:beta") in (0, 1)

        await nodes["beta"].stop(deregister=False)  # as if SIGKILLed
        await nodes["gamma"].stop()  # a clean shutdown leaves nothing behind
        for _ in range(40):
            if await watcher.dead_nodes() == ["beta"]:
                break
            await asyncio.sleep(0.1)
        assert await watcher.dead_nodes() == ["beta"]
        assert await watcher.live_nodes() == ["alpha"]
        assert not await watcher.claim_dead("alpha")  # alive: nobody may claim it
        claims = await asyncio.gather(*(nodes[n].claim_dead("beta") for n in ("alpha", "gamma")))
        assert sorted(claims) == [False, True]
        assert await watcher.known() == ["alpha"]
    finally:
        for registry in nodes.values():
            await registry.stop()
        await client.aclose()


async def test_heartbeats_on_a_cluster(cluster: RedisClusterGroup) -> None:
    config = ScalingConfig(mode="cluster", cluster_nodes=tuple(cluster.addresses),
                           prefix="hbc", timeout=1.0)
    client = command_client(config)
    one = NodeRegistry(config, client, "one", interval=0.2, ttl=0.6)
    two = NodeRegistry(config, client, "two", interval=0.2, ttl=0.6)
    try:
        await one.beat()
        await two.beat()
        assert await one.live_nodes() == ["one", "two"]
        await asyncio.sleep(0.8)
        assert await one.dead_nodes() == ["one", "two"]
        await one.beat()
        assert await two.live_nodes() == ["one"]
        assert await one.claim_dead("two")
    finally:
        await one.stop()
        await client.aclose()
