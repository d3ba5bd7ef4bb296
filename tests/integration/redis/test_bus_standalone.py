"""The bus over one standalone Redis: order, isolation, and surviving a Redis restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from broadcaster.hub import redis_wire
from broadcaster.hub.redis_bus import RedisBus
from broadcaster.hub.resp import PythonReader
from broadcaster.hub.topics import Topics
from broadcaster.scaling import ScalingConfig
from tests.integration.redis.conftest import Inbox, running_bus
from tests.support.redis_servers import RedisServer


def config_for(server: RedisServer, prefix: str = "reverb") -> ScalingConfig:
    return ScalingConfig(port=server.port, prefix=prefix, timeout=1.0)


async def test_messages_arrive_in_order_on_the_other_node(redis_server: RedisServer) -> None:
    config = config_for(redis_server)
    topics = Topics(config.prefix).names
    inbox_a, inbox_b = Inbox(), Inbox()
    async with running_bus(config, topics, inbox_a) as a, running_bus(config, topics, inbox_b):
        sent = [f"m{i}".encode() for i in range(2000)]
        for payload in sent:
            assert a.publish(topics[0], payload)
        await inbox_b.wait_for(lambda: len(inbox_b.messages) >= len(sent))
        assert inbox_b.payloads(topics[0]) == sent
        await inbox_a.wait_for(lambda: len(inbox_a.messages) >= len(sent))  # own echo too
        assert await a.flush(1.0)
        assert a.stats.published == len(sent)
        assert a.stats.dropped == 0


async def test_two_prefixes_on_one_redis_see_nothing_of_each_other(
        redis_server: RedisServer) -> None:
    blue, green = config_for(redis_server, "blue"), config_for(redis_server, "green")
    blue_topics, green_topics = Topics("blue").names, Topics("green").names
    assert set(blue_topics).isdisjoint(green_topics)
    blue_inbox, green_inbox = Inbox(), Inbox()
    async with running_bus(blue, blue_topics, blue_inbox) as b1, \
            running_bus(blue, blue_topics), \
            running_bus(green, green_topics, green_inbox) as g1:
        b1.publish(blue_topics[0], b"for blue")
        g1.publish(green_topics[0], b"for green")
        await blue_inbox.wait_for(lambda: len(blue_inbox.messages) >= 1)
        await green_inbox.wait_for(lambda: len(green_inbox.messages) >= 1)
        await asyncio.sleep(0.2)
        assert blue_inbox.payloads() == [b"for blue"]
        assert green_inbox.payloads() == [b"for green"]


async def test_redis_restart_delivery_resumes_and_reconnected_fires(
        redis_server: RedisServer) -> None:
    config = config_for(redis_server)
    topic = Topics(config.prefix).names[0]
    inbox = Inbox()
    reconnected: list[float] = []

    async def on_reconnected() -> None:
        reconnected.append(time.monotonic())

    async with running_bus(config, [topic], on_reconnected=on_reconnected) as sender, \
            running_bus(config, [topic], inbox, on_reconnected=on_reconnected) as receiver:
        sender.publish(topic, b"before")
        await inbox.wait_for(lambda: inbox.payloads() == [b"before"])

        redis_server.stop()
        await inbox.wait_for(lambda: not sender.connected and not receiver.connected, 5.0)
        refused_at = time.monotonic()
        assert sender.publish(topic, b"while down") is False
        assert time.monotonic() - refused_at < 0.01  # refused at once, nothing awaited
        assert sender.stats.dropped >= 1
        await asyncio.sleep(2.0)  # down for a while: several reconnect attempts fail

        redis_server.start()
        back = time.monotonic()
        delivered = 0

        def resumed() -> bool:
            # Publish until the other node receives: measures when delivery is really back.
            nonlocal delivered
            if sender.connected:
                sender.publish(topic, f"after{delivered}".encode())
                delivered += 1
            return any(p.startswith(b"after") for p in inbox.payloads())

        took = await inbox.wait_for(resumed, 5.0)
        assert took < 5.0
        await inbox.wait_for(lambda: len(reconnected) == 2, 2.0)
        assert all(at >= back for at in reconnected)
        assert sender.stats.reconnects == receiver.stats.reconnects == 1
        assert b"while down" not in inbox.payloads()


async def test_a_bus_started_while_redis_is_down_connects_when_it_comes_up(
        redis_server: RedisServer) -> None:
    config = config_for(redis_server)
    topic = Topics(config.prefix).names[0]
    redis_server.stop()
    bus = RedisBus(config, [topic], Inbox())
    bus.start()
    try:
        assert not await bus.wait_connected(0.5)
        assert bus.publish(topic, b"x") is False
        with pytest.raises(ValueError, match="not one of"):
            bus.publish("reverb:elsewhere", b"x")
        redis_server.start()
        assert await bus.wait_connected(5.0)
        assert bus.stats.reconnects == 0  # the first connection is not a reconnection
    finally:
        await bus.close()


async def test_a_redis_that_stops_answering_is_noticed_and_left(
        redis_server: RedisServer) -> None:
    # Frozen, not closed: only the bus's own pings can tell that the link is dead.
    config = config_for(redis_server)
    topic = Topics(config.prefix).names[0]
    inbox = Inbox()
    async with running_bus(config, [topic]) as sender, \
            running_bus(config, [topic], inbox, ping_after=0.5) as receiver:
        redis_server.pause()
        try:
            await inbox.wait_for(lambda: not receiver.connected, 4.0)
        finally:
            redis_server.resume()
        sent = 0

        def resumed() -> bool:
            nonlocal sent
            if sender.connected:
                sender.publish(topic, f"after{sent}".encode())
                sent += 1
            return bool(inbox.payloads())

        await inbox.wait_for(resumed, 5.0)
        assert receiver.stats.reconnects == 1


async def test_without_hiredis_the_python_parser_delivers_the_same(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_wire, "make_reader", PythonReader)
    config = config_for(redis_server)
    topics = Topics(config.prefix).names
    inbox = Inbox()
    async with running_bus(config, topics) as a, running_bus(config, topics, inbox) as b:
        parsers = [c._parser for link in a._links + b._links
                   for c in (link.subscription, link.publisher)]
        assert parsers and all(isinstance(parser, PythonReader) for parser in parsers)
        sent = [bytes([i % 256]) * (i % 300) + b"\r\n" for i in range(3000)]
        for payload in sent:
            assert a.publish(topics[0], payload)
        await inbox.wait_for(lambda: len(inbox.messages) >= len(sent))
        assert inbox.payloads() == sent


async def test_published_answers_once_the_message_came_back_from_redis(
        redis_server: RedisServer) -> None:
    config = config_for(redis_server)
    topics = Topics(config.prefix).names
    inbox = Inbox()
    async with running_bus(config, topics, inbox) as bus:
        results = await asyncio.gather(*(bus.published(topics[0], f"p{i}".encode())
                                         for i in range(50)))
        assert results == [True] * 50
        # Every one came back on the node's own subscription before its answer.
        assert sorted(inbox.payloads()) == sorted(f"p{i}".encode() for i in range(50))
        redis_server.stop()
        deadline = time.monotonic() + 5
        while bus.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert await bus.published(topics[0], b"refused") is None
