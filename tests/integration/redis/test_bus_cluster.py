"""The bus over a 3-master Redis Cluster with sharded pub/sub."""

from __future__ import annotations

import asyncio

from broadcaster.hub.topics import Topics
from broadcaster.scaling import ScalingConfig
from tests.integration.redis.conftest import Inbox, running_bus
from tests.support.redis_servers import RedisClusterGroup


async def test_topics_on_every_shard_arrive_in_order(cluster: RedisClusterGroup) -> None:
    config = ScalingConfig(mode="cluster", cluster_nodes=(cluster.addresses[0],),
                           partitions=16, timeout=1.0)
    topics = Topics(config.prefix, config.partitions)
    owners = {cluster.owner_port(Topics.slot(name)) for name in topics.names}
    assert owners == {node.port for node in cluster.nodes}  # every shard carries some topics
    inbox = Inbox()
    async with running_bus(config, topics.names) as sender, \
            running_bus(config, topics.names, inbox) as receiver:
        assert len(receiver._known) == 3  # one sharded subscription per master
        channels = [f"private-orders.{i}" for i in range(40)]
        expected: dict[str, list[bytes]] = {}
        for n in range(50):
            for channel in channels:
                topic = topics.for_channel("app-1", channel)
                payload = f"{channel}:{n}".encode()
                assert sender.publish(topic, payload)
                expected.setdefault(topic, []).append(payload)
        total = 50 * len(channels)
        await inbox.wait_for(lambda: len(inbox.messages) >= total, 10.0)
        for topic, payloads in expected.items():
            assert inbox.payloads(topic) == payloads
        assert len({cluster.owner_port(Topics.slot(t)) for t in expected}) == 3
        assert sender.stats.dropped == 0


async def test_prefixes_are_isolated_on_a_cluster(cluster: RedisClusterGroup) -> None:
    nodes = tuple(cluster.addresses)
    blue = ScalingConfig(mode="cluster", cluster_nodes=nodes, prefix="blue", partitions=4)
    green = ScalingConfig(mode="cluster", cluster_nodes=nodes, prefix="green", partitions=4)
    blue_topics, green_topics = Topics("blue", 4), Topics("green", 4)
    blue_inbox, green_inbox = Inbox(), Inbox()
    async with running_bus(blue, blue_topics.names, blue_inbox) as b, \
            running_bus(green, green_topics.names, green_inbox) as g:
        for i in range(20):
            b.publish(blue_topics.for_channel("1", f"c{i}"), b"blue")
            g.publish(green_topics.for_channel("1", f"c{i}"), b"green")
        await blue_inbox.wait_for(lambda: len(blue_inbox.messages) >= 20)
        await green_inbox.wait_for(lambda: len(green_inbox.messages) >= 20)
        assert set(blue_inbox.payloads()) == {b"blue"}
        assert set(green_inbox.payloads()) == {b"green"}


async def test_a_restarted_master_gets_its_topics_back(cluster: RedisClusterGroup) -> None:
    config = ScalingConfig(mode="cluster", cluster_nodes=tuple(cluster.addresses),
                           partitions=16, timeout=1.0)
    topics = Topics(config.prefix, config.partitions)
    victim = cluster.nodes[1]
    on_victim = [t for t in topics.names if cluster.owner_port(Topics.slot(t)) == victim.port]
    assert on_victim
    inbox = Inbox()
    async with running_bus(config, topics.names) as sender, \
            running_bus(config, topics.names, inbox) as receiver:
        victim.stop()
        await inbox.wait_for(lambda: not receiver.connected, 5.0)
        victim.start()  # same port, same nodes.conf: it serves the same slots again
        await asyncio.to_thread(cluster.wait_ok)
        sent = 0

        def resumed() -> bool:
            nonlocal sent
            if sender.connected:
                sender.publish(on_victim[0], f"after{sent}".encode())
                sent += 1
            return bool(inbox.payloads(on_victim[0]))

        await inbox.wait_for(resumed, 5.0)
        assert receiver.stats.reconnects >= 1
