"""The bus through Sentinel: it finds the master and follows a failover."""

from __future__ import annotations

import asyncio

import pytest

from broadcaster.hub.node_registry import NodeRegistry
from broadcaster.hub.redis_clients import command_client
from broadcaster.hub.topics import Topics
from broadcaster.scaling import ScalingConfig
from tests.integration.redis.conftest import Inbox, running_bus
from tests.support.redis_servers import SentinelGroup


@pytest.mark.parametrize("kill", [True, False], ids=["master-killed", "master-demoted"])
async def test_follows_the_new_master_after_a_failover(sentinels: SentinelGroup,
                                                      kill: bool) -> None:
    config = ScalingConfig(mode="sentinel", sentinels=tuple(sentinels.addresses), timeout=1.0)
    topic = Topics(config.prefix).names[0]
    inbox = Inbox()
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    async with running_bus(config, [topic]) as sender, \
            running_bus(config, [topic], inbox, on_reconnected=on_reconnected) as receiver:
        for i in range(100):
            sender.publish(topic, f"before{i}".encode())
        await inbox.wait_for(lambda: len(inbox.messages) == 100)
        assert inbox.payloads() == [f"before{i}".encode() for i in range(100)]

        new_master = await asyncio.to_thread(sentinels.fail_over, kill=kill)
        moved = (("127.0.0.1", new_master.port),)
        # A demoted master still relays PUBLISH among its own clients: being delivered is not
        # enough, both nodes must have moved to the new master.
        await inbox.wait_for(lambda: sender.connected and receiver.connected
                             and sender._known == receiver._known == moved, 8.0)
        with new_master.client() as direct:
            assert direct.pubsub_numsub(topic) == [(topic.encode(), 2)]  # both buses
        sender.publish(topic, b"after")
        await inbox.wait_for(lambda: b"after" in inbox.payloads())
        assert reconnected.is_set()
        assert receiver.stats.reconnects >= 1


async def test_heartbeats_reach_the_new_master_after_a_failover(sentinels: SentinelGroup) -> None:
    config = ScalingConfig(mode="sentinel", sentinels=tuple(sentinels.addresses), timeout=1.0)
    client = command_client(config)
    registry = NodeRegistry(config, client, "node-1", interval=0.2, ttl=5.0)
    try:
        await registry.beat()
        new_master = await asyncio.to_thread(sentinels.fail_over)
        with new_master.client() as direct:
            direct.delete("reverb:nodes:node-1")  # replicated before the failover: start clean
            registry.start()  # the first beats may hit the dead master; later ones must land
            for _ in range(50):
                if direct.exists("reverb:nodes:node-1"):
                    break
                await asyncio.sleep(0.1)
            assert direct.exists("reverb:nodes:node-1")
        assert await registry.live_nodes() == ["node-1"]
    finally:
        await registry.stop()
        await client.aclose()
