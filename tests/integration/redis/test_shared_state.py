"""The shared-state scripts on a real Redis: first/last decisions, full channels, a node's share
dropped and registered again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from broadcaster.hub.redis_clients import command_client
from broadcaster.hub.redis_state import SharedState
from broadcaster.protocol.presence import Member
from broadcaster.scaling import ScalingConfig
from tests.support.redis_servers import RedisServer

ALICE, BOB = Member("alice", {"n": "A"}), Member("bob", None)


@pytest.fixture
async def states(redis_server: RedisServer) -> AsyncIterator[tuple[SharedState, SharedState]]:
    config = ScalingConfig(port=redis_server.port, prefix="unit")
    client = command_client(config)
    yield SharedState(config, client, "n1"), SharedState(config, client, "n2")
    await client.aclose()


async def test_first_and_last_connection_anywhere(
        states: tuple[SharedState, SharedState]) -> None:
    one, two = states
    joined = await one.join("a", "presence-r", ALICE, 100)
    assert (joined.total, joined.first, joined.roster) == (1, True, {"alice": {"n": "A"}})
    joined = await two.join("a", "presence-r", ALICE, 100)  # alice again, other node
    assert (joined.total, joined.first) == (2, False)
    joined = await two.join("a", "presence-r", BOB, 100)
    assert joined.first and joined.roster == {"alice": {"n": "A"}, "bob": None}
    assert await one.leave("a", "presence-r", ALICE) == (2, False)  # still on node two
    assert await two.leave("a", "presence-r", ALICE) == (1, True)
    assert await two.leave("a", "presence-r", BOB) == (0, True)
    assert await one.channel_counts("a") == {}
    assert await one.members("a", "presence-r") == []


async def test_full_presence_channel_refuses_new_users_only(
        states: tuple[SharedState, SharedState]) -> None:
    one, two = states
    assert not (await one.join("a", "presence-f", ALICE, 1)).full
    assert (await two.join("a", "presence-f", BOB, 1)).full
    assert not (await two.join("a", "presence-f", ALICE, 1)).full  # a second connection
    assert await one.subscriptions("a", "presence-f") == 2


async def test_dropping_a_node_decides_what_its_departure_means(
        states: tuple[SharedState, SharedState]) -> None:
    one, two = states
    await one.join("a", "presence-d", ALICE, 100)
    await one.join("a", "presence-d", BOB, 100)
    await two.join("a", "presence-d", BOB, 100)
    await one.join("a", "only-one", None, 100)
    await two.join("a", "shared", None, 100)
    await one.join("a", "shared", None, 100)
    await one.sign("a", "alice", 1)
    await one.connections("a", 3)
    assert await two.connections("a", 1) == 4
    dropped = await two.drop_node("a", "n1")
    assert sorted(dropped.vacated) == ["only-one"]
    assert dropped.removed == [("presence-d", "alice")]
    assert dropped.offline == ["alice"]
    assert dropped.counts == {"presence-d": 1, "shared": 1}
    assert await two.members("a", "presence-d") == ["bob"]
    assert await two.connection_total("a") == 1
    assert await two.user_connections("a", "alice") == 0


async def test_register_rewrites_a_share_exactly(
        states: tuple[SharedState, SharedState]) -> None:
    one, _ = states
    snapshot = {"conns": 2, "channels": [["c", 2], ["presence-g", 1]],
                "presence": [["presence-g", "alice", 1, '{"n":"A"}']], "users": [["alice", 1]]}
    for _ in range(3):  # idempotent: the share is replaced, not added again
        await one.register("a", snapshot)
    assert await one.channel_counts("a") == {"c": 2, "presence-g": 1}
    assert await one.members("a", "presence-g") == ["alice"]
    assert await one.connection_total("a") == 2
    assert await one.user_connections("a", "alice") == 1
    await one.register("a", {"conns": 0, "channels": [], "presence": [], "users": []})
    assert await one.channel_counts("a") == {}
    assert await one.connection_total("a") == 0
