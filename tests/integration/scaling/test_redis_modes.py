"""The hub on a Redis Sentinel group (through a failover) and on a 3-master Redis Cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.scaling.conftest import running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import drain, join_presence
from tests.integration.scaling.test_failures import until_delivered
from tests.support.redis_servers import redis_cluster, sentinel_group


def addresses(pairs: list[tuple[str, int]]) -> str:
    return ",".join(f"{host}:{port}" for host, port in pairs)


async def test_sentinel_failover_keeps_the_cluster_working(tmp_path: Path) -> None:
    with sentinel_group(tmp_path / "sentinel") as group:
        env = scaling_env(REDIS_SENTINELS=addresses(group.addresses),
                          REDIS_SENTINEL_MASTER="mymaster")
        with running_nodes(tmp_path, 2, env) as nodes:
            bob, _ = await join_presence(nodes, 0, "presence-sentinel", "bob")
            alice, _ = await join_presence(nodes, 1, "presence-sentinel", "alice")
            await drain(bob, "pusher_internal:member_added", 1)
            watcher = nodes.client(1)
            await watcher.open()
            await watcher.subscribe("probe")
            await until_delivered(nodes, 0, watcher, 5)
            group.fail_over()
            promoted = time.monotonic()
            await until_delivered(nodes, 0, watcher, 15)
            print(f"delivery back {time.monotonic() - promoted:.2f}s after the promotion")
            for index in (0, 1):
                users = nodes.get(index, "channels/presence-sentinel/users")["users"]
                assert sorted(u["id"] for u in users) == ["alice", "bob"]
            await alice.close()
            removed = await drain(bob, "pusher_internal:member_removed", 1)
            assert json.loads(removed[0]["data"])["user_id"] == "alice"
            await bob.close()
            await watcher.close()


async def test_cluster_carries_events_and_presence(tmp_path: Path) -> None:
    with redis_cluster(tmp_path / "cluster") as group:
        env = scaling_env(REDIS_CLUSTER_NODES=addresses(group.addresses))
        with running_nodes(tmp_path, 2, env) as nodes:
            bob, _ = await join_presence(nodes, 0, "presence-sharded", "bob")
            alice, roster = await join_presence(nodes, 1, "presence-sharded", "alice")
            assert sorted(roster["ids"]) == ["alice", "bob"]
            await drain(bob, "pusher_internal:member_added", 1)
            clients = [nodes.client(i) for i in (0, 1)]
            for client in clients:
                await client.open()
            channels = [f"sharded-{n}" for n in range(8)]  # spread over the partitions
            for client in clients:
                for channel in channels:
                    await client.send({"event": "pusher:subscribe",
                                       "data": {"channel": channel}})
            for client in clients:
                await drain(client, "pusher_internal:subscription_succeeded", len(channels))
            api = nodes.api(0)
            for n in range(20):
                for channel in channels:
                    api.trigger(channel, "tick", {"n": n})
            api.close()
            for client in clients:
                ticks = await drain(client, "tick", 20 * len(channels))
                for channel in channels:
                    got = [json.loads(e["data"])["n"] for e in ticks if e["channel"] == channel]
                    assert got == list(range(20))
            stats = [nodes.get(i, "channels", filter_by_prefix="sharded-",
                               info="subscription_count") for i in (0, 1)]
            assert stats[0] == stats[1]
            assert all(c["subscription_count"] == 2 for c in stats[0]["channels"].values())
            for client in (*clients, alice, bob):
                await client.close()
