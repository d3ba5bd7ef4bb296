"""Unmodified pusher-js (Node build, ws transport) against the broadcaster."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.interop.auth_endpoints import WRONG_SECRET_AUTH_PATH, NpmAuthServer
from tests.interop.conftest import JsClients

SOCKET_ID = re.compile(r"^\d+\.\d+$")


def test_connects_and_gets_a_pusher_socket_id(js_clients: JsClients) -> None:
    client = js_clients.connect()

    state = client.state()

    assert state["state"] == "connected"
    assert SOCKET_ID.match(state["socket_id"]), state
    assert client.states() == ["connecting", "connected"], client.transcript()


def test_public_event_arrives_with_data_parsed_as_sent(
    js_clients: JsClients, pypi: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("interop-public")
    client = js_clients.connect()
    assert client.subscribed(channel) == {}
    payload = {"text": "héllo ✓", "n": 3, "nested": {"list": [1, None, True]}}

    start = client.mark()
    assert pypi.trigger(channel, "order-shipped", payload) == {}
    pypi.trigger(channel, "plain", "just text, not JSON")

    assert client.wait_event(channel, "order-shipped", start)["data"] == payload
    assert client.wait_event(channel, "plain", start)["data"] == "just text, not JSON"


def test_private_channel_subscribes_with_endpoint_auth(
    js_clients: JsClients, npm_auth: NpmAuthServer, pypi: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("private-orders")
    client = js_clients.connect(auth_endpoint=npm_auth.url(), user=("7", "Ada"))

    assert client.subscribed(channel) == {}
    start = client.mark()
    pypi.trigger(channel, "status", {"state": "paid"})

    assert client.wait_event(channel, "status", start)["data"] == {"state": "paid"}
    [subscribe] = [f for f in client.sent("pusher:subscribe") if f["data"]["channel"] == channel]
    assert subscribe["data"]["auth"].startswith("app-key:")


def test_bad_signature_gets_a_subscription_error_and_the_connection_stays(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    channel = unique("private-refused")
    client = js_clients.connect(auth_endpoint=npm_auth.url(WRONG_SECRET_AUTH_PATH), user=("7", "A"))

    client.subscribe(channel)
    error = client.wait_event(channel, "pusher:subscription_error")["data"]

    assert error["type"] == "AuthError", client.transcript()
    assert error["status"] == 401, client.transcript()
    assert client.events(channel, "pusher:subscription_succeeded") == []
    assert client.state()["state"] == "connected"
    assert client.states() == ["connecting", "connected"]


def test_presence_members_join_and_leave(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    channel = unique("presence-room")
    ada = js_clients.connect(auth_endpoint=npm_auth.url(), user=("1", "Ada"))
    bob = js_clients.connect(auth_endpoint=npm_auth.url(), user=("2", "Bob"))

    alone = ada.subscribed(channel)
    assert alone["count"] == 1
    assert alone["me"] == {"id": "1", "info": {"id": "1", "name": "Ada"}}
    assert alone["members"] == {"1": {"id": "1", "name": "Ada"}}

    start = ada.mark()
    together = bob.subscribed(channel)
    assert together["count"] == 2
    assert together["members"] == {
        "1": {"id": "1", "name": "Ada"},
        "2": {"id": "2", "name": "Bob"},
    }
    added = ada.wait_event(channel, "pusher:member_added", start)["data"]
    assert added == {"id": "2", "info": {"id": "2", "name": "Bob"}}

    start = ada.mark()
    bob.stop()
    removed = ada.wait_event(channel, "pusher:member_removed", start)["data"]
    assert removed == {"id": "2", "info": {"id": "2", "name": "Bob"}}
    assert ada.members(channel)["count"] == 1
    assert bob.events(channel, "pusher:member_added") == []


def test_client_events_reach_the_other_client_only(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    channel = unique("private-typing")
    ada = js_clients.connect(auth_endpoint=npm_auth.url(), user=("1", "Ada"))
    bob = js_clients.connect(auth_endpoint=npm_auth.url(), user=("2", "Bob"))
    ada.subscribed(channel)
    bob.subscribed(channel)

    assert ada.trigger(channel, "client-typing", {"typing": True})
    assert bob.wait_event(channel, "client-typing")["data"] == {"typing": True}
    # Bob's reply reaching Ada proves her connection is live; by then her own event, had the
    # server echoed it, would have arrived first.
    assert bob.trigger(channel, "client-seen", {"ok": 1})
    assert ada.wait_event(channel, "client-seen")["data"] == {"ok": 1}

    assert ada.events(channel, "client-typing") == []
    assert bob.events(channel, "client-seen") == []
    assert "user_id" not in bob.wait_frame("client-typing")


def test_client_events_on_presence_carry_the_sender_user_id(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    channel = unique("presence-typing")
    ada = js_clients.connect(auth_endpoint=npm_auth.url(), user=("1", "Ada"))
    bob = js_clients.connect(auth_endpoint=npm_auth.url(), user=("2", "Bob"))
    ada.subscribed(channel)
    bob.subscribed(channel)

    assert ada.trigger(channel, "client-typing", {"typing": True})

    assert bob.wait_event(channel, "client-typing")["data"] == {"typing": True}
    assert bob.wait_frame("client-typing")["user_id"] == "1"


def test_ping_pong_keeps_the_connection_open(js_clients: JsClients) -> None:
    # pusher-js pings after activityTimeout of silence and reconnects when no pong arrives
    # within pongTimeout; shortened so several rounds fit in a few seconds.
    client = js_clients.connect(activityTimeout=300, pongTimeout=1500)
    socket_id = client.state()["socket_id"]

    client.process.wait_for_many(
        lambda line: line.get("kind") == "frame" and line["frame"].get("event") == "pusher:pong",
        4,
        "four pongs",
        timeout=10,
    )

    assert len(client.sent("pusher:ping")) >= 4
    assert client.states() == ["connecting", "connected"], client.transcript()
    assert client.state() == {"state": "connected", "socket_id": socket_id}
