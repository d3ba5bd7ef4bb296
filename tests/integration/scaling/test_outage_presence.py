"""Presence changes made while Redis was away reach the other nodes once it is back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.scaling.conftest import WEBHOOK_EVENTS, running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import drain, join_presence
from tests.support.pusher_client import PusherTestClient
from tests.support.redis_servers import RedisServer
from tests.support.webhook_receiver import WebhookReceiver, count

CHANNEL = "presence-outage"
MEMBER_EVENTS = ("pusher_internal:member_added", "pusher_internal:member_removed")


async def member_events(client: PusherTestClient, seconds: float) -> list[tuple[str, str]]:
    """(event, user_id) of every member event arriving within `seconds`."""
    got: list[tuple[str, str]] = []
    try:
        while True:
            event: dict[str, Any] = await client.next_event(seconds)
            if event["event"] in MEMBER_EVENTS:
                got.append((event["event"].rpartition(":")[2],
                            json.loads(event["data"])["user_id"]))
    except TimeoutError:
        return got


async def test_members_who_came_and_went_during_an_outage_are_announced_once_after_it(
        tmp_path: Path, redis_server: RedisServer, hook: WebhookReceiver) -> None:
    hooks = json.dumps([{"url": hook.url, "event_types": WEBHOOK_EVENTS}])
    with running_nodes(tmp_path, 2, scaling_env(redis_server,
                                                 REVERB_APP_WEBHOOKS=hooks)) as nodes:
        bob, _ = await join_presence(nodes, 0, CHANNEL, "bob")
        alice, _ = await join_presence(nodes, 1, CHANNEL, "alice")
        dave, _ = await join_presence(nodes, 1, CHANNEL, "dave")
        await drain(bob, "pusher_internal:member_added", 2)
        await drain(alice, "pusher_internal:member_added", 1)

        with redis_server.client() as client:  # Redis goes away, and keeps its data
            client.shutdown(save=True)
        redis_server.stop()
        await alice.close()
        carol, _ = await join_presence(nodes, 1, CHANNEL, "carol")
        # Node 1's own sockets hear of it at once; node 0's cannot yet.
        assert sorted(await member_events(dave, 1.0)) == [("member_added", "carol"),
                                                          ("member_removed", "alice")]
        assert await member_events(bob, 0.5) == []

        redis_server.start()
        # Once Redis is back node 1 writes its share again and tells the others what changed,
        # once; its own sockets are not told twice.
        assert sorted(await member_events(bob, 6.0)) == [("member_added", "carol"),
                                                         ("member_removed", "alice")]
        assert await member_events(dave, 0.5) == []
        users = nodes.get(0, f"channels/{CHANNEL}/users")["users"]
        assert sorted(u["id"] for u in users) == ["bob", "carol", "dave"]
        events = await hook.until(
            lambda ev: count(ev, "member_added", CHANNEL) >= 4, "member_added of carol")
        assert [e["user_id"] for e in events if e["name"] == "member_removed"] == ["alice"]
        assert sorted(e["user_id"] for e in events if e["name"] == "member_added") == [
            "alice", "bob", "carol", "dave"]
        for client in (bob, dave, carol):
            await client.close()
