"""The per-connection state machine, driven with text frames and a fake clock."""

import json
from typing import Any

import pytest

from broadcaster.protocol.apps import App
from broadcaster.protocol.connection import (
    Action,
    Close,
    Join,
    Leave,
    PusherConnection,
    Relay,
    Reply,
)
from broadcaster.protocol.presence import Member
from broadcaster.protocol.signatures import channel_auth

APP = App(id="1", key="key", secret="secret")
SOCKET = "123.456"


def connection(**options: Any) -> PusherConnection:
    return PusherConnection(App(id="1", key="key", secret="secret", **options), SOCKET)


def frame(event: str, **data: object) -> str:
    return json.dumps({"event": event, "data": data})


def reply_event(actions: list[Action]) -> dict[str, Any]:
    assert len(actions) == 1 and isinstance(actions[0], Reply), actions
    parsed: dict[str, Any] = json.loads(actions[0].text)
    return parsed


def joined(conn: PusherConnection, channel: str, channel_data: str | None = None) -> Join:
    auth = channel_auth("key", "secret", SOCKET, channel, channel_data)
    actions = conn.receive(frame("pusher:subscribe", channel=channel, auth=auth,
                                 channel_data=channel_data), 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Join), actions
    conn.joined(actions[0])
    return actions[0]


def test_established_frame_carries_socket_id_and_activity_timeout() -> None:
    event = json.loads(connection(activity_timeout=45).established())
    assert event["event"] == "pusher:connection_established"
    assert json.loads(event["data"]) == {"socket_id": SOCKET, "activity_timeout": 45}


def test_ping_gets_pong() -> None:
    assert reply_event(connection().receive(frame("pusher:ping"), 0.0))["event"] == "pusher:pong"


def test_public_subscribe_needs_no_auth() -> None:
    assert connection().receive(frame("pusher:subscribe", channel="news"), 0.0) == [
        Join("news", None)
    ]


def test_private_subscribe_with_valid_auth_joins() -> None:
    assert joined(connection(), "private-chat") == Join("private-chat", None)


@pytest.mark.parametrize("auth", [None, "", "key:deadbeef", "otherkey:" + "0" * 64])
def test_private_subscribe_with_bad_auth_is_refused_on_the_channel(auth: str | None) -> None:
    conn = connection()
    event = reply_event(conn.receive(frame("pusher:subscribe", channel="private-chat",
                                           auth=auth), 0.0))
    assert event["event"] == "pusher:subscription_error"
    assert event["channel"] == "private-chat"
    assert event["data"]["status"] == 401
    assert event["data"]["type"] == "AuthError"
    assert "private-chat" not in conn.channels


def test_auth_for_another_socket_is_refused() -> None:
    auth = channel_auth("key", "secret", "999.999", "private-chat")
    event = reply_event(connection().receive(
        frame("pusher:subscribe", channel="private-chat", auth=auth), 0.0))
    assert event["event"] == "pusher:subscription_error"


def test_presence_subscribe_carries_member() -> None:
    data = json.dumps({"user_id": 7, "user_info": {"name": "Ann"}})
    join = joined(connection(), "presence-room", data)
    assert join.member == Member("7", {"name": "Ann"})


@pytest.mark.parametrize(
    "channel_data",
    [None, "not json", "[]", '{"user_info":{}}', '{"user_id":true}', '{"user_id":""}',
     json.dumps({"user_id": "x" * 129})],
)
def test_presence_subscribe_with_bad_channel_data(channel_data: str | None) -> None:
    conn = connection()
    auth = channel_auth("key", "secret", SOCKET, "presence-room", channel_data)
    event = reply_event(conn.receive(frame("pusher:subscribe", channel="presence-room",
                                           auth=auth, channel_data=channel_data), 0.0))
    assert event["event"] == "pusher:subscription_error"


def test_presence_user_info_size_limit() -> None:
    data = json.dumps({"user_id": "1", "user_info": {"bio": "x" * 200}})
    auth = channel_auth("key", "secret", SOCKET, "presence-room", data)
    event = reply_event(connection(max_presence_user_info_size=100).receive(
        frame("pusher:subscribe", channel="presence-room", auth=auth, channel_data=data), 0.0))
    assert event["data"]["status"] == 413


def test_invalid_channel_name_is_a_subscription_error() -> None:
    event = reply_event(connection().receive(frame("pusher:subscribe", channel="a b"), 0.0))
    assert event["event"] == "pusher:subscription_error"
    assert event["data"]["status"] == 400


def test_unsubscribe_leaves_once() -> None:
    conn = connection()
    joined(conn, "private-chat")
    assert conn.receive(frame("pusher:unsubscribe", channel="private-chat"), 0.0) == [
        Leave("private-chat", None)
    ]
    assert conn.receive(frame("pusher:unsubscribe", channel="private-chat"), 0.0) == []


def test_resubscribing_as_another_user_leaves_first() -> None:
    conn = connection()
    joined(conn, "presence-room", '{"user_id":"1"}')
    data = '{"user_id":"2"}'
    auth = channel_auth("key", "secret", SOCKET, "presence-room", data)
    actions = conn.receive(frame("pusher:subscribe", channel="presence-room", auth=auth,
                                 channel_data=data), 0.0)
    assert actions == [Leave("presence-room", Member("1", None)),
                       Join("presence-room", Member("2", None))]


def client_event(channel: str, data: object = None) -> str:
    return json.dumps({"event": "client-typing", "channel": channel, "data": data or {"x": 1}})


def test_client_event_is_relayed_to_others() -> None:
    conn = connection()
    joined(conn, "private-chat")
    actions = conn.receive(client_event("private-chat"), 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Relay)
    assert json.loads(actions[0].text) == {"event": "client-typing", "channel": "private-chat",
                                           "data": {"x": 1}}


def test_client_event_on_presence_adds_user_id() -> None:
    conn = connection()
    joined(conn, "presence-room", '{"user_id":"42"}')
    (relay,) = conn.receive(client_event("presence-room"), 0.0)
    assert isinstance(relay, Relay)
    assert json.loads(relay.text)["user_id"] == "42"


def test_client_event_rules() -> None:
    conn = connection()
    joined(conn, "news")
    public = reply_event(conn.receive(client_event("news"), 0.0))
    assert json.loads(public["data"])["code"] == 4301
    not_member = reply_event(conn.receive(client_event("private-other"), 0.0))
    assert json.loads(not_member["data"])["code"] == 4009
    disabled = connection(client_events=False)
    joined(disabled, "private-chat")
    off = reply_event(disabled.receive(client_event("private-chat"), 0.0))
    assert json.loads(off["data"])["code"] == 4301


def test_client_event_rate_limit_per_second() -> None:
    conn = connection(max_client_events_per_second=3)
    joined(conn, "private-chat")
    results = [conn.receive(client_event("private-chat"), 10.0 + i * 0.01)[0] for i in range(4)]
    assert [type(r) for r in results] == [Relay, Relay, Relay, Reply]
    assert json.loads(json.loads(results[3].text)["data"])["code"] == 4301  # type: ignore[union-attr]
    assert isinstance(conn.receive(client_event("private-chat"), 11.5)[0], Relay)


def test_malformed_and_oversized_frames_get_errors_and_keep_the_socket() -> None:
    conn = connection(max_message_size=100)
    for text in ["{", '{"event":"pusher:nope"}', "x" * 101]:
        event = reply_event(conn.receive(text, 0.0))
        assert event["event"] == "pusher:error"
        assert json.loads(event["data"])["code"] == 4200


def test_leave_all_lists_every_channel_once() -> None:
    conn = connection()
    joined(conn, "news")
    joined(conn, "presence-room", '{"user_id":"1"}')
    assert conn.leave_all() == [Leave("news", None), Leave("presence-room", Member("1", None))]
    assert conn.leave_all() == []


def test_close_action_is_never_produced_by_client_mistakes() -> None:
    conn = connection()
    for text in ["", "null", '{"event":"client-x","channel":"private-x","data":1}']:
        assert not any(isinstance(a, Close) for a in conn.receive(text, 0.0))
