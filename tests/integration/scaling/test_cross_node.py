"""Events, presence and the HTTP API across three nodes sharing one Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.scaling.conftest import Nodes
from tests.support.pusher_client import PusherTestClient
from tests.support.webhook_receiver import WebhookReceiver, count


async def drain(client: PusherTestClient, name: str, want: int,
                timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next `want` events named `name`, skipping others (e.g. subscription counts)."""
    got: list[dict[str, Any]] = []
    while len(got) < want:
        event = await client.next_event(timeout)
        if event["event"] == name:
            got.append(event)
    return got


async def test_http_publish_on_one_node_reaches_every_node_once_in_order(nodes: Nodes) -> None:
    clients = [nodes.client(i) for i in range(3)]
    for client in clients:
        await client.open()
        await client.subscribe("orders")
    api = nodes.api(1)
    for n in range(50):
        assert api.trigger("orders", "tick", {"n": n}).status_code == 200
    api.close()
    for client in clients:
        ticks = await drain(client, "tick", 50)
        assert [json.loads(e["data"])["n"] for e in ticks] == list(range(50))
        await expect_no(client, "tick", 0.3)  # nothing twice
    for client in clients:
        await client.close()


async def test_sequential_publishes_through_different_nodes_keep_their_order(
        nodes: Nodes) -> None:
    clients = [nodes.client(i) for i in range(3)]
    for client in clients:
        await client.open()
        await client.subscribe("relay")
    apis = [nodes.api(i) for i in range(3)]
    for n in range(60):  # each answer comes before the next request, on another node
        assert apis[n % 3].trigger("relay", "step", {"n": n}).status_code == 200
    for api in apis:
        api.close()
    for client in clients:
        steps = await drain(client, "step", 60)
        assert [json.loads(e["data"])["n"] for e in steps] == list(range(60))
        await client.close()


async def test_concurrent_publishes_through_one_node_are_answered_and_delivered_once(
        nodes: Nodes) -> None:
    # Requests that arrive together wait for Redis together: each is answered, each event
    # reaches every node once, and each publisher's events keep its order.
    clients = [nodes.client(i) for i in (0, 1)]
    for client in clients:
        await client.open()
        await client.subscribe("burst")
    apis = [nodes.api(0) for _ in range(8)]

    def publish(k: int) -> list[int]:
        return [apis[k].trigger("burst", "b", {"k": k, "n": n}).status_code for n in range(25)]

    statuses = await asyncio.gather(*(asyncio.to_thread(publish, k) for k in range(8)))
    for api in apis:
        api.close()
    assert statuses == [[200] * 25] * 8
    for client in clients:
        got = [json.loads(e["data"]) for e in await drain(client, "b", 200)]
        for k in range(8):
            assert [d["n"] for d in got if d["k"] == k] == list(range(25))
        await expect_no(client, "b", 0.3)  # nothing twice
        await client.close()


async def test_socket_id_exclusion_holds_on_other_nodes(nodes: Nodes) -> None:
    a, b = nodes.client(0), nodes.client(2)
    await a.open()
    await b.open()
    await a.subscribe("excl")
    await b.subscribe("excl")
    api = nodes.api(1)
    api.trigger("excl", "news", {"x": 1}, socket_id=b.socket_id)
    api.close()
    await drain(a, "news", 1)
    await expect_no(b, "news")
    await a.close()
    await b.close()


async def test_client_events_cross_nodes_but_not_back_to_the_sender(nodes: Nodes) -> None:
    # Client events need a private channel and the app's client_events (default: on).
    a, b = nodes.client(0), nodes.client(1)
    await a.open()
    await b.open()
    server = nodes[0]
    await a.subscribe("private-chat", key=server.key, secret=server.secret)
    await b.subscribe("private-chat", key=server.key, secret=server.secret)
    await a.send({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}})
    got = await drain(b, "client-typing", 1)
    assert got[0]["channel"] == "private-chat"
    await expect_no(a, "client-typing")
    await a.close()
    await b.close()


async def subscribe(client: PusherTestClient, channel: str) -> None:
    """Subscribe, skipping counts of earlier subscriptions that arrive meanwhile."""
    event = await client.subscribe(channel, expect_ok=False)
    while event["event"] != "pusher_internal:subscription_succeeded":
        assert event["event"] == "pusher_internal:subscription_count", event
        event = await client.next_event()


async def expect_no(client: PusherTestClient, name: str, seconds: float = 0.5) -> None:
    """Fail if an event named `name` arrives within `seconds` (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            event = await client.next_event(left)
        except TimeoutError:
            return
        assert event["event"] != name, event


def presence_data(user_id: str) -> str:
    return json.dumps({"user_id": user_id, "user_info": {"name": user_id.upper()}})


async def join_presence(nodes: Nodes, index: int, channel: str,
                        user_id: str) -> tuple[PusherTestClient, dict[str, Any]]:
    client = nodes.client(index)
    await client.open()
    server = nodes[index]
    ok = await client.subscribe(channel, key=server.key, secret=server.secret,
                                channel_data=presence_data(user_id))
    return client, json.loads(ok["data"])["presence"]


async def test_presence_first_and_last_connection_across_nodes(
        nodes: Nodes, receiver: WebhookReceiver) -> None:
    channel = "presence-room"
    alice, roster = await join_presence(nodes, 0, channel, "alice")
    assert roster["ids"] == ["alice"]
    bob, roster = await join_presence(nodes, 1, channel, "bob")
    assert sorted(roster["ids"]) == ["alice", "bob"]
    assert roster["hash"]["alice"] == {"name": "ALICE"}
    added = await drain(alice, "pusher_internal:member_added", 1)
    assert json.loads(added[0]["data"])["user_id"] == "bob"
    # Alice's second connection, on the third node: no member_added anywhere.
    alice2, roster = await join_presence(nodes, 2, channel, "alice")
    assert sorted(roster["ids"]) == ["alice", "bob"]
    await expect_no(bob, "pusher_internal:member_added")
    for index in range(3):  # every node answers the same
        users = nodes.get(index, f"channels/{channel}/users")["users"]
        assert sorted(u["id"] for u in users) == ["alice", "bob"]
        info = nodes.get(index, f"channels/{channel}", info="user_count,subscription_count")
        assert info["occupied"] is True and info["user_count"] == 2
    await alice.close()  # alice is still on node 2: nobody is told she left
    await expect_no(bob, "pusher_internal:member_removed")
    await alice2.close()
    removed = await drain(bob, "pusher_internal:member_removed", 1)
    assert json.loads(removed[0]["data"])["user_id"] == "alice"
    await bob.close()
    events = await receiver.until(
        lambda ev: count(ev, "channel_vacated", channel) == 1, "channel_vacated")
    await asyncio.sleep(0.5)  # any duplicate would arrive by now
    events = receiver.accepted_events()
    assert count(events, "member_added", channel) == 2
    assert count(events, "member_removed", channel) == 2
    assert count(events, "channel_occupied", channel) == 1
    assert count(events, "channel_vacated", channel) == 1
    for index in range(3):
        assert nodes.get(index, f"channels/{channel}/users")["users"] == []


async def test_http_api_answers_the_same_from_every_node(nodes: Nodes) -> None:
    clients = [nodes.client(i) for i in range(3)]
    for i, client in enumerate(clients):
        await client.open()
        await subscribe(client, "stats-shared")
        await subscribe(client, f"stats-only-{i}")
    answers = [nodes.get(i, "channels", filter_by_prefix="stats-",
                         info="subscription_count") for i in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["channels"]["stats-shared"]["subscription_count"] == 3
    assert set(answers[0]["channels"]) == {"stats-shared", "stats-only-0", "stats-only-1",
                                           "stats-only-2"}
    counts = [nodes.get(i, "connections")["connections"] for i in range(3)]
    assert counts[0] == counts[1] == counts[2] >= 3
    for client in clients:
        await client.close()


async def test_cache_channel_filled_on_one_node_replays_on_another(nodes: Nodes) -> None:
    api = nodes.api(0)
    assert api.trigger("cache-prices", "price", {"p": 42}).status_code == 200
    api.close()
    client = nodes.client(2)
    await client.open()
    await client.subscribe("cache-prices")
    replay = await drain(client, "price", 1)
    assert json.loads(replay[0]["data"]) == {"p": 42}
    await client.close()
    cached = nodes.get(1, "channels/cache-prices", info="cache")
    assert json.loads(cached["cache"]["data"]) == {"p": 42}


def user_auth(key: str, secret: str, socket_id: str, user_data: str) -> str:
    message = f"{socket_id}::user::{user_data}".encode()
    return f"{key}:{hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"


async def sign_in(nodes: Nodes, index: int, user_id: str,
                  watchlist: list[str] | None = None) -> PusherTestClient:
    client = nodes.client(index)
    await client.open()
    server = nodes[index]
    data: dict[str, Any] = {"id": user_id}
    if watchlist is not None:
        data["watchlist"] = watchlist
    user_data = json.dumps(data)
    await client.send({"event": "pusher:signin", "data": {
        "auth": user_auth(server.key, server.secret, client.socket_id, user_data),
        "user_data": user_data}})
    await client.expect("pusher:signin_success")
    return client


async def test_send_to_user_watchlist_and_terminate_across_nodes(nodes: Nodes) -> None:
    watcher = await sign_in(nodes, 0, "x-watcher", ["x-dan"])
    dan1 = await sign_in(nodes, 1, "x-dan")
    online = await watcher.expect("pusher_internal:watchlist_events")
    assert json.loads(online["data"])["events"] == [{"name": "online", "user_ids": ["x-dan"]}]
    dan2 = await sign_in(nodes, 2, "x-dan")
    api = nodes.api(0)
    assert api.trigger("#server-to-user-x-dan", "notice", {"n": 1}).status_code == 200
    for client in (dan1, dan2):
        assert json.loads((await client.expect("notice"))["data"]) == {"n": 1}
    await watcher.expect_silence(0.3)
    response = api.request("POST", "users/x-dan/terminate_connections", {})
    assert response.status_code == 200
    for client in (dan1, dan2):
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(3):  # pusher:error (4009), then the close frame
                await client.next_event()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4009
    offline = await watcher.expect("pusher_internal:watchlist_events")
    assert json.loads(offline["data"])["events"] == [{"name": "offline", "user_ids": ["x-dan"]}]
    api.close()
    await watcher.close()


async def test_subscription_count_counts_every_node(nodes: Nodes) -> None:
    first, second = nodes.client(0), nodes.client(1)
    await first.open()
    await second.open()
    await first.subscribe("counted")
    assert json.loads((await first.expect("pusher_internal:subscription_count"))["data"]) == {
        "subscription_count": 1}
    await second.subscribe("counted")
    for client in (first, second):
        event = await client.expect("pusher_internal:subscription_count")
        assert json.loads(event["data"]) == {"subscription_count": 2}
    await second.close()
    event = await first.expect("pusher_internal:subscription_count")
    assert json.loads(event["data"]) == {"subscription_count": 1}
    await first.close()
