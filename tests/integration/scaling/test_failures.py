"""A node killed without cleaning up, and Redis stopped and started again with its data lost."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from tests.integration.scaling.conftest import WEBHOOK_EVENTS, Nodes, running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import drain, join_presence
from tests.support.pusher_client import PusherTestClient
from tests.support.redis_servers import RedisServer
from tests.support.webhook_receiver import WebhookReceiver, count


async def until_delivered(nodes: Nodes, publisher: int, client: PusherTestClient,
                          within: float) -> float:
    """Publish on node `publisher` every 100 ms until `client` receives one; seconds taken."""
    api = nodes.api(publisher)
    started = time.monotonic()
    try:
        for attempt in range(int(within / 0.1)):
            api.trigger("probe", "probe", {"n": attempt})
            try:
                while True:
                    event = await client.next_event(0.1)
                    if event["event"] == "probe":
                        return time.monotonic() - started
            except TimeoutError:
                continue
    finally:
        api.close()
    raise AssertionError(f"no cross-node delivery within {within}s")


async def test_sigkilled_node_is_cleaned_up_by_another_within_30s(
        tmp_path: Path, redis_server: RedisServer, hook: WebhookReceiver) -> None:
    hooks = json.dumps([{"url": hook.url, "event_types": WEBHOOK_EVENTS}])
    with running_nodes(tmp_path, 3, scaling_env(redis_server,
                                                 REVERB_APP_WEBHOOKS=hooks)) as nodes:
        bob, _ = await join_presence(nodes, 0, "presence-crew", "bob")
        alice, roster = await join_presence(nodes, 1, "presence-crew", "alice")
        assert sorted(roster["ids"]) == ["alice", "bob"]
        await drain(bob, "pusher_internal:member_added", 1)
        lonely = nodes.client(1)
        await lonely.open()
        await lonely.subscribe("only-on-the-dead-node")
        assert nodes.get(2, "connections")["connections"] == 3
        nodes[1].kill()
        killed = time.monotonic()
        removed = await drain(bob, "pusher_internal:member_removed", 1, timeout=30)
        took = time.monotonic() - killed
        assert json.loads(removed[0]["data"])["user_id"] == "alice"
        print(f"cleanup after SIGKILL: member_removed after {took:.1f}s")
        assert took < 30
        for index in (0, 2):
            users = nodes.get(index, "channels/presence-crew/users")["users"]
            assert [u["id"] for u in users] == ["bob"]
            assert nodes.get(index, "connections")["connections"] == 1
            channels = nodes.get(index, "channels")["channels"]
            assert "only-on-the-dead-node" not in channels
        await hook.until(lambda ev: count(ev, "channel_vacated", "only-on-the-dead-node") == 1,
                         "channel_vacated of the dead node's channel")
        await asyncio.sleep(1.0)
        events = hook.accepted_events()
        assert count(events, "member_removed", "presence-crew") == 1
        assert count(events, "channel_vacated", "only-on-the-dead-node") == 1
        for client in (bob, alice, lonely):
            await client.close()


async def test_redis_restart_loses_nothing_that_matters(
        tmp_path: Path, redis_server: RedisServer) -> None:
    with running_nodes(tmp_path, 2, scaling_env(redis_server)) as nodes:
        bob, _ = await join_presence(nodes, 0, "presence-ops", "bob")
        alice, _ = await join_presence(nodes, 1, "presence-ops", "alice")
        await drain(bob, "pusher_internal:member_added", 1)
        watcher = nodes.client(1)
        await watcher.open()
        await watcher.subscribe("probe")
        local = nodes.client(0)
        await local.open()
        await local.subscribe("probe")
        await until_delivered(nodes, 0, watcher, 5)

        redis_server.stop()
        # While Redis is away each node still serves its own clients.
        api = nodes.api(0)
        assert api.trigger("probe", "during", {"x": 1}).status_code == 200
        api.close()
        assert (await drain(local, "during", 1))[0]["channel"] == "probe"
        await asyncio.sleep(3)  # long enough for the reconnection backoff to reach its cap
        redis_server.start()  # same port, empty: Redis here keeps nothing on disk
        back = time.monotonic()
        took = await until_delivered(nodes, 0, watcher, 10)
        print(f"cross-node delivery back {time.monotonic() - back:.2f}s after Redis returned")
        assert took < 5
        # Every node wrote its share again: rosters, counts and occupancy are whole.
        deadline = time.monotonic() + 5
        while True:
            answers = [nodes.get(i, "channels/presence-ops/users")["users"] for i in (0, 1)]
            if all(sorted(u["id"] for u in a) == ["alice", "bob"] for a in answers):
                break
            assert time.monotonic() < deadline, answers
            await asyncio.sleep(0.1)
        for index in (0, 1):
            assert nodes.get(index, "connections")["connections"] == 4
            stats = nodes.get(index, "channels/probe", info="subscription_count")
            assert stats["subscription_count"] == 2
        # Presence still works across nodes after the restart.
        await alice.close()
        removed = await drain(bob, "pusher_internal:member_removed", 1)
        assert json.loads(removed[0]["data"])["user_id"] == "alice"
        for client in (bob, watcher, local):
            await client.close()


async def test_node_started_before_redis_serves_alone_then_joins(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "late-redis")  # its port is chosen, nothing listens yet
    env = scaling_env(redis)
    try:
        with running_nodes(tmp_path, 1, env) as first:
            assert "redis unreachable at start" in first[0].log()
            bob, roster = await join_presence(first, 0, "presence-early", "bob")
            assert roster["ids"] == ["bob"]
            api = first.api(0)
            api.trigger("presence-early", "alone", {"x": 1})
            api.close()
            await drain(bob, "alone", 1)
            redis.start()
            with running_nodes(tmp_path / "second", 1, env) as second:
                both = Nodes([first[0], second[0]])
                # The first node registered bob when Redis came: the second node sees him.
                deadline = time.monotonic() + 10
                while not nodes_see(both, "presence-early", ["bob"]):
                    assert time.monotonic() < deadline, "bob never reached the shared roster"
                    await asyncio.sleep(0.1)
                alice, roster = await join_presence(both, 1, "presence-early", "alice")
                assert sorted(roster["ids"]) == ["alice", "bob"]
                added = await drain(bob, "pusher_internal:member_added", 1)
                assert json.loads(added[0]["data"])["user_id"] == "alice"
                await alice.close()
            await bob.close()
    finally:
        redis.stop()


def nodes_see(nodes: Nodes, channel: str, users: list[str]) -> bool:
    return all(sorted(u["id"] for u in nodes.get(i, f"channels/{channel}/users")["users"])
               == users for i in range(len(nodes)))


async def test_node_frozen_past_its_heartbeat_registers_again(
        tmp_path: Path, redis_server: RedisServer) -> None:
    with running_nodes(tmp_path, 2, scaling_env(redis_server)) as nodes:
        bob, _ = await join_presence(nodes, 0, "presence-frozen", "bob")
        alice, _ = await join_presence(nodes, 1, "presence-frozen", "alice")
        await drain(bob, "pusher_internal:member_added", 1)
        frozen = nodes[1].process
        assert frozen is not None and frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)  # alive, but silent: its heartbeat lapses
        try:
            removed = await drain(bob, "pusher_internal:member_removed", 1, timeout=30)
            assert json.loads(removed[0]["data"])["user_id"] == "alice"
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        # Its clients never left: it notices it was declared dead, writes its share again and
        # announces its members back.
        added = await drain(bob, "pusher_internal:member_added", 1, timeout=15)
        assert json.loads(added[0]["data"]) == {"user_id": "alice",
                                                "user_info": {"name": "ALICE"}}
        deadline = time.monotonic() + 15
        while not nodes_see(nodes, "presence-frozen", ["alice", "bob"]):
            assert time.monotonic() < deadline, "the frozen node's members never came back"
            await asyncio.sleep(0.2)
        assert nodes.get(0, "connections")["connections"] == 2
        await bob.close()
        await alice.close()


async def test_clean_shutdown_leaves_nothing_behind(
        tmp_path: Path, redis_server: RedisServer) -> None:
    env = scaling_env(redis_server)
    with running_nodes(tmp_path, 2, env) as nodes:
        bob, _ = await join_presence(nodes, 0, "presence-leaving", "bob")
        alice, _ = await join_presence(nodes, 1, "presence-leaving", "alice")
        await drain(bob, "pusher_internal:member_added", 1)
        nodes[1].stop()  # SIGTERM: 4200 to its clients, then its share is removed at once
        removed = await drain(bob, "pusher_internal:member_removed", 1, timeout=5)
        assert json.loads(removed[0]["data"])["user_id"] == "alice"
        assert nodes.get(0, "connections")["connections"] == 1
        with redis_server.client() as direct:
            assert direct.zcard(f"{env['REVERB_SCALING_PREFIX']}:nodes") == 1
            node_keys = direct.keys(f"{env['REVERB_SCALING_PREFIX']}:*:node:*")
        assert len(node_keys) == 2  # node 0's channels and presence shares only
        await bob.close()
        await alice.close()
