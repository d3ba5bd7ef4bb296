"""Sign-in, server-to-user events, watchlists, terminate, cache channels and subscription counts
with unmodified pusher-js and the npm and PyPI `pusher` server SDKs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.interop.auth_endpoints import USER_AUTH_PATH, NpmAuthServer, PypiAuthServer
from tests.interop.clients import JsClient
from tests.interop.conftest import JsClients
from tests.interop.npm_sdk import call, npm_sdk_calls
from tests.support.processes import Broadcaster, running_broadcaster


@pytest.fixture(scope="module")
def shared_broadcaster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broadcaster]:
    """This module's broadcaster: the app opts in to subscription counts."""
    env = {"REVERB_APP_SUBSCRIPTION_COUNT": "true"}
    with running_broadcaster(tmp_path_factory.mktemp("interop-users"), extra_env=env) as server:
        yield server


def signed_in_client(js_clients: JsClients, endpoint: str, user_id: str,
                     watchlist: list[str] | None = None,
                     bind: Callable[[JsClient], None] | None = None) -> JsClient:
    client = js_clients.connect(user=(user_id, f"User {user_id}"), user_auth_endpoint=endpoint,
                                watchlist=watchlist)
    if bind is not None:
        bind(client)  # before sign-in, as an app binds its handlers up front
    client.signin()
    # pusher-js subscribes to its own user channel once signed in.
    client.process.wait_for(
        lambda line: line.get("kind") == "frame"
        and line["frame"].get("event") == "pusher_internal:subscription_succeeded"
        and line["frame"].get("channel") == f"#server-to-user-{user_id}",
        "user channel subscribed",
    )
    return client


def wait_state(client: JsClient, state: str) -> None:
    client.process.wait_for(
        lambda line: line.get("kind") == "state" and line.get("current") == state, state
    )


def test_pusher_js_signin_and_send_to_user_from_both_sdks(
    js_clients: JsClients, npm_auth: NpmAuthServer, pypi: Any, shared_broadcaster: Broadcaster,
    unique: Callable[[str], str],
) -> None:
    uid, other_uid = unique("ann"), unique("bob")
    bind = lambda client: client.bind_user("notice")  # noqa: E731
    ann1 = signed_in_client(js_clients, npm_auth.url(USER_AUTH_PATH), uid, bind=bind)
    ann2 = signed_in_client(js_clients, npm_auth.url(USER_AUTH_PATH), uid, bind=bind)
    bob = signed_in_client(js_clients, npm_auth.url(USER_AUTH_PATH), other_uid, bind=bind)
    signin = ann1.frames("pusher:signin_success")[0]
    assert signin["data"]["user_data"].startswith("{")

    assert pypi.send_to_user(uid, "notice", {"from": "python"}) == {}
    [npm] = npm_sdk_calls(shared_broadcaster,
                          [call("sendToUser", uid, "notice", {"from": "node"})])
    assert (npm["kind"], npm["status"], npm["body"]) == ("response", 200, {})

    for client in (ann1, ann2):
        client.process.wait_for(lambda line: line.get("kind") == "user_event"
                                and line["data"] == {"from": "python"}, "python notice")
        client.process.wait_for(lambda line: line.get("kind") == "user_event"
                                and line["data"] == {"from": "node"}, "node notice")
    time.sleep(0.3)
    assert bob.user_events("notice") == []


def test_pusher_js_signin_with_the_pypi_endpoint(
    js_clients: JsClients, pypi_auth: PypiAuthServer, pypi: Any, unique: Callable[[str], str],
) -> None:
    uid = unique("carl")
    client = signed_in_client(js_clients, pypi_auth.url(USER_AUTH_PATH), uid,
                              bind=lambda c: c.bind_user("hello"))
    assert [r["path"] for r in pypi_auth.requests if r.get("user_id") == uid] == [USER_AUTH_PATH]
    start = client.mark()
    pypi.send_to_user(uid, "hello", "plain text")
    assert client.wait_user_event("hello", start)["data"] == "plain text"


def test_watchlist_online_and_offline_in_pusher_js(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str],
) -> None:
    already, later = unique("early"), unique("late")
    endpoint = npm_auth.url(USER_AUTH_PATH)
    signed_in_client(js_clients, endpoint, already)

    def bind(client: JsClient) -> None:
        client.bind_watchlist("online")
        client.bind_watchlist("offline")

    watcher = signed_in_client(js_clients, endpoint, unique("watcher"), [already, later], bind)
    watcher.wait_watchlist("online", [already])  # online at sign-in
    start = watcher.mark()
    late = signed_in_client(js_clients, endpoint, later)
    watcher.wait_watchlist("online", [later], start)
    start = watcher.mark()
    late.disconnect()
    watcher.wait_watchlist("offline", [later], start)


def test_terminate_user_connections_from_both_sdks(
    js_clients: JsClients, npm_auth: NpmAuthServer, pypi: Any, shared_broadcaster: Broadcaster,
    unique: Callable[[str], str],
) -> None:
    endpoint = npm_auth.url(USER_AUTH_PATH)
    doomed, pythonic, bystander = unique("doomed"), unique("pythonic"), unique("bystander")
    doomed_client = signed_in_client(js_clients, endpoint, doomed)
    pythonic_client = signed_in_client(js_clients, endpoint, pythonic)
    bystander_client = signed_in_client(js_clients, endpoint, bystander)

    [npm] = npm_sdk_calls(shared_broadcaster, [call("terminateUserConnections", doomed)])
    assert (npm["kind"], npm["status"], npm["body"]) == ("response", 200, {})
    assert pypi.terminate_user_connections(pythonic) == {}

    for client in (doomed_client, pythonic_client):
        error = client.wait_frame("pusher:error")
        assert error["data"]["code"] == 4009
        wait_state(client, "disconnected")  # 4000-4099: pusher-js does not reconnect
    assert bystander_client.state()["state"] == "connected"
    assert bystander_client.frames("pusher:error") == []


def test_subscription_count_in_pusher_js(
    js_clients: JsClients, unique: Callable[[str], str],
) -> None:
    channel = unique("counted")
    first, second = js_clients.connect(), js_clients.connect()
    first.subscribed(channel)
    assert first.wait_event(channel, "pusher:subscription_count")["data"] == {
        "subscription_count": 1}
    start = first.mark()
    second.subscribed(channel)
    assert first.wait_event(channel, "pusher:subscription_count", start)["data"] == {
        "subscription_count": 2}
    start = first.mark()
    second.unsubscribe(channel)
    assert first.wait_event(channel, "pusher:subscription_count", start)["data"] == {
        "subscription_count": 1}


def test_cache_channel_miss_and_replay_in_pusher_js(
    js_clients: JsClients, pypi: Any, unique: Callable[[str], str],
) -> None:
    channel = unique("cache-weather")
    first = js_clients.connect()
    first.subscribed(channel)
    first.wait_event(channel, "pusher:cache_miss")
    start = first.mark()
    pypi.trigger(channel, "forecast", {"sky": "clear"})
    first.wait_event(channel, "forecast", start)
    late = js_clients.connect()
    late.subscribed(channel)
    assert late.wait_event(channel, "forecast")["data"] == {"sky": "clear"}
    assert late.events(channel, "pusher:cache_miss") == []
    info = pypi.channel_info(channel, ["cache"])
    assert info["cache"]["event"] == "forecast"
