"""Sign-in, server-to-user events, watchlists, terminate, cache channels and subscription counts
against a real broadcaster process over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.api_client import ApiClient, signed_query
from tests.support.processes import Broadcaster, running_broadcaster
from tests.support.pusher_client import PusherTestClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broadcaster]:
    env = {"REVERB_APP_SUBSCRIPTION_COUNT": "true", "REVERB_APP_CACHE_TTL": "60"}
    with running_broadcaster(tmp_path_factory.mktemp("users"), extra_env=env) as running:
        yield running


@pytest.fixture
def rest(server: Broadcaster) -> Iterator[ApiClient]:
    client = ApiClient(server.base_url, server.app_id, server.key, server.secret)
    yield client
    client.close()


def user_auth(server: Broadcaster, socket_id: str, user_data: str) -> str:
    """What an app's user authentication endpoint returns; written out independently."""
    message = f"{socket_id}::user::{user_data}".encode()
    return f"{server.key}:{hmac.new(server.secret.encode(), message, hashlib.sha256).hexdigest()}"


async def sign_in(client: PusherTestClient, server: Broadcaster, user_id: str,
                  watchlist: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "name": f"user {user_id}"}
    if watchlist is not None:
        data["watchlist"] = watchlist
    user_data = json.dumps(data)
    await client.send({"event": "pusher:signin", "data": {
        "auth": user_auth(server, client.socket_id, user_data), "user_data": user_data}})
    success = await client.expect("pusher:signin_success")
    assert json.loads(success["data"]) == {"user_data": user_data}
    return success


async def expect_past_counts(client: PusherTestClient, name: str) -> dict[str, Any]:
    """The next event other than `pusher_internal:subscription_count` (this module's app sends
    counts), which must be `name`."""
    for _ in range(10):
        event = await client.next_event()
        if event["event"] != "pusher_internal:subscription_count":
            assert event["event"] == name, event
            return event
    raise AssertionError(f"no {name} among the next 10 events")


async def expect_closed(client: PusherTestClient, code: int) -> dict[str, Any]:
    error = await client.expect("pusher:error")
    assert json.loads(error["data"])["code"] == code
    assert client.ws is not None
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(client.ws.recv(), 5)
    assert client.ws.close_code == code
    return error


async def test_signin_and_own_user_channel(server: Broadcaster) -> None:
    async with PusherTestClient(server.ws_url) as ann:
        refused = await ann.subscribe("#server-to-user-ann", auth="", expect_ok=False)
        assert refused["event"] == "pusher:subscription_error"
        await sign_in(ann, server, "ann")
        await ann.subscribe("#server-to-user-ann", auth="")
        other = await ann.subscribe("#server-to-user-bob", auth="", expect_ok=False)
        assert other["event"] == "pusher:subscription_error"
        await ann.send({"event": "pusher:ping", "data": {}})
        await ann.expect("pusher:pong")  # still connected


@pytest.mark.parametrize("user_data", ['{"id":7}', '{"name":"x"}', "nope"])
async def test_bad_signin_is_4009_and_closes(server: Broadcaster, user_data: str) -> None:
    async with PusherTestClient(server.ws_url) as client:
        await client.send({"event": "pusher:signin", "data": {
            "auth": user_auth(server, client.socket_id, user_data), "user_data": user_data}})
        await expect_closed(client, 4009)
    async with PusherTestClient(server.ws_url) as forged:
        await forged.send({"event": "pusher:signin", "data": {
            "auth": f"{server.key}:{'0' * 64}", "user_data": '{"id":"1"}'}})
        await expect_closed(forged, 4009)


async def test_watchlist_over_100_is_4302_and_stays_open(server: Broadcaster) -> None:
    async with PusherTestClient(server.ws_url) as client:
        user_data = json.dumps({"id": "w", "watchlist": [str(i) for i in range(101)]})
        await client.send({"event": "pusher:signin", "data": {
            "auth": user_auth(server, client.socket_id, user_data), "user_data": user_data}})
        error = await client.expect("pusher:error")
        assert json.loads(error["data"])["code"] == 4302
        await client.send({"event": "pusher:ping", "data": {}})
        await client.expect("pusher:pong")


async def test_send_to_user_reaches_every_signed_in_connection_only(
    server: Broadcaster, rest: ApiClient,
) -> None:
    bob1, bob2 = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
    carl, anon = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
    for client in (bob1, bob2, carl, anon):
        await client.open()
    await sign_in(bob1, server, "bob-s")
    await sign_in(bob2, server, "bob-s")
    await sign_in(carl, server, "carl-s")
    assert rest.trigger("#server-to-user-bob-s", "notice", {"n": 1}).status_code == 200
    for client in (bob1, bob2):
        event = await client.expect("notice")
        assert event["channel"] == "#server-to-user-bob-s"
        assert json.loads(event["data"]) == {"n": 1}
    await carl.expect_silence()
    await anon.expect_silence()
    for client in (bob1, bob2, carl, anon):
        await client.close()


async def test_terminate_closes_the_users_connections_only(
    server: Broadcaster, rest: ApiClient,
) -> None:
    dan1, dan2 = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
    eve, dan_on_presence = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
    for client in (dan1, dan2, eve, dan_on_presence):
        await client.open()
    await sign_in(dan1, server, "dan")
    await sign_in(dan2, server, "dan")
    await sign_in(eve, server, "eve")
    # The same user id on a presence channel, never signed in: not a signed-in connection.
    await dan_on_presence.subscribe("presence-lobby", key=server.key, secret=server.secret,
                                    channel_data='{"user_id":"dan"}')
    response = rest.request("POST", "users/dan/terminate_connections", {})
    assert (response.status_code, response.json()) == (200, {})
    for client in (dan1, dan2):
        await expect_closed(client, 4009)
    for survivor in (eve, dan_on_presence):
        await survivor.send({"event": "pusher:ping", "data": {}})
        await expect_past_counts(survivor, "pusher:pong")
    assert rest.request("GET", "users/dan/terminate_connections").status_code == 405
    await eve.close()
    await dan_on_presence.close()


async def test_terminate_without_the_app_prefix_uses_the_signing_key(
    server: Broadcaster, rest: ApiClient,
) -> None:
    # The Python SDK 3.3.4 posts to /users/{id}/terminate_connections, without /apps/{id}.
    async with PusherTestClient(server.ws_url) as fay:
        await sign_in(fay, server, "fay")
        path = "/users/fay/terminate_connections"
        query = signed_query(server.key, server.secret, "POST", path, b"{}")
        response = rest.http.post(f"{path}?{query}", content=b"{}")
        assert (response.status_code, response.json()) == (200, {})
        await expect_closed(fay, 4009)
        forged = signed_query(server.key, "not-the-secret", "POST", path, b"{}")
        assert rest.http.post(f"{path}?{forged}", content=b"{}").status_code == 401
        unknown = signed_query("no-such-key", server.secret, "POST", path, b"{}")
        assert rest.http.post(f"{path}?{unknown}", content=b"{}").status_code == 404


async def test_watchlist_online_and_offline(server: Broadcaster) -> None:
    async with PusherTestClient(server.ws_url) as early:
        await sign_in(early, server, "wl-early")
        watcher = PusherTestClient(server.ws_url)
        await watcher.open()
        await sign_in(watcher, server, "wl-watcher", ["wl-early", "wl-late"])
        first = await watcher.expect("pusher_internal:watchlist_events")
        assert json.loads(first["data"]) == {"events": [{"name": "online",
                                                         "user_ids": ["wl-early"]}]}
        late1, late2 = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
        await late1.open()
        await late2.open()
        await sign_in(late1, server, "wl-late")
        online = await watcher.expect("pusher_internal:watchlist_events")
        assert json.loads(online["data"])["events"] == [{"name": "online",
                                                         "user_ids": ["wl-late"]}]
        await sign_in(late2, server, "wl-late")
        await late1.close()
        await watcher.expect_silence()  # wl-late is still online through late2
        await late2.close()
        offline = await watcher.expect("pusher_internal:watchlist_events")
        assert json.loads(offline["data"])["events"] == [{"name": "offline",
                                                          "user_ids": ["wl-late"]}]
        await watcher.close()


async def test_cache_channel_miss_then_replay_and_info(server: Broadcaster,
                                                       rest: ApiClient) -> None:
    async with PusherTestClient(server.ws_url) as first:
        await first.subscribe("cache-prices")
        miss = await expect_past_counts(first, "pusher:cache_miss")
        assert miss == {"event": "pusher:cache_miss", "channel": "cache-prices"}
        assert rest.trigger("cache-prices", "price", {"p": 1}).status_code == 200
        assert rest.trigger("cache-prices", "price", {"p": 2}).status_code == 200
        assert json.loads((await expect_past_counts(first, "price"))["data"]) == {"p": 1}
        async with PusherTestClient(server.ws_url) as late:
            await late.subscribe("cache-prices")
            replay = await expect_past_counts(late, "price")
            assert replay == {"event": "price", "channel": "cache-prices", "data": '{"p": 2}'}
        info = rest.request("GET", "channels/cache-prices", params={"info": "cache"}).json()
        assert info["occupied"] is True
        assert info["cache"]["event"] == "price" and info["cache"]["data"] == '{"p": 2}'
        assert 0 < info["cache"]["ttl"] <= 60
    empty = rest.request("GET", "channels/cache-empty", params={"info": "cache"}).json()
    assert empty == {"occupied": False}
    assert rest.request("GET", "channels/news", params={"info": "cache"}).status_code == 400


async def test_private_cache_channel_needs_auth_and_replays_client_events(
    server: Broadcaster,
) -> None:
    async with PusherTestClient(server.ws_url) as a:
        refused = await a.subscribe("private-cache-room", auth="x:y", expect_ok=False)
        assert refused["event"] == "pusher:subscription_error"
        await a.subscribe("private-cache-room", key=server.key, secret=server.secret)
        await expect_past_counts(a, "pusher:cache_miss")
        await a.send({"event": "client-state", "channel": "private-cache-room",
                      "data": {"s": 1}})
        await asyncio.sleep(0.2)
        async with PusherTestClient(server.ws_url) as b:
            await b.subscribe("private-cache-room", key=server.key, secret=server.secret)
            replay = await expect_past_counts(b, "client-state")
            assert json.loads(json.dumps(replay["data"])) == {"s": 1}


async def test_subscription_count_on_subscribe_and_unsubscribe(server: Broadcaster) -> None:
    a, b = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
    await a.open()
    await b.open()
    await a.subscribe("counted")
    one = await a.expect("pusher_internal:subscription_count")
    assert (one["channel"], json.loads(one["data"])) == ("counted", {"subscription_count": 1})
    await b.subscribe("counted")
    for client in (a, b):
        two = await client.expect("pusher_internal:subscription_count")
        assert json.loads(two["data"]) == {"subscription_count": 2}
    await b.send({"event": "pusher:unsubscribe", "data": {"channel": "counted"}})
    back = await a.expect("pusher_internal:subscription_count")
    assert json.loads(back["data"]) == {"subscription_count": 1}
    await a.close()
    await b.close()


async def test_deeply_nested_json_is_a_4xx_and_a_4200(server: Broadcaster,
                                                      rest: ApiClient) -> None:
    body = b'{"name":"e","channel":"c","data":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = rest.request("POST", "events", body)
    assert response.status_code == 400 and "error" in response.json()
    assert rest.request("POST", "batch_events", b"[" * 10_000).status_code == 400
    async with PusherTestClient(server.ws_url) as client:
        await client.send("[" * 4_000 + "]" * 4_000)
        error = await client.expect("pusher:error")
        assert json.loads(error["data"])["code"] == 4200
        await client.send({"event": "pusher:ping", "data": {}})
        await client.expect("pusher:pong")


async def test_signin_timeout_closes_sockets_that_never_sign_in(tmp_path: Path) -> None:
    env = {"REVERB_APP_USER_AUTHENTICATION_TIMEOUT": "1"}
    with running_broadcaster(tmp_path, extra_env=env) as timed:
        async with PusherTestClient(timed.ws_url) as lazy, \
                PusherTestClient(timed.ws_url) as prompt:
            await sign_in(prompt, timed, "prompt")
            error = await expect_closed(lazy, 4009)
            assert "signed in" in json.loads(error["data"])["message"]
            await prompt.send({"event": "pusher:ping", "data": {}})
            await prompt.expect("pusher:pong")
