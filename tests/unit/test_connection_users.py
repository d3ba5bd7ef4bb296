"""Sign-in, user channels and client-event lifecycle in the per-connection state machine."""

import json

from broadcaster.protocol.apps import App
from broadcaster.protocol.connection import Close, PusherConnection, Relay, Reply, SignIn
from broadcaster.protocol.users import SignedInUser
from tests.unit.test_connection import SOCKET, connection, frame, joined, reply_event


def signin_frame(user_data: str, auth: str | None = None) -> str:
    from broadcaster.protocol.signatures import user_auth

    auth = user_auth("key", "secret", SOCKET, user_data) if auth is None else auth
    return frame("pusher:signin", auth=auth, user_data=user_data)


def signed_in(conn: PusherConnection, user_data: str = '{"id":"7"}') -> SignIn:
    (action,) = conn.receive(signin_frame(user_data), 0.0)
    assert isinstance(action, SignIn), action
    return action


def test_signin_produces_the_user_and_remembers_it() -> None:
    conn = connection()
    action = signed_in(conn, '{"id":"7","watchlist":["8"]}')
    assert action == SignIn(SignedInUser("7", '{"id":"7","watchlist":["8"]}', ("8",)), None)
    assert conn.user == action.user


def test_signing_in_again_names_the_previous_user() -> None:
    conn = connection()
    first = signed_in(conn, '{"id":"7"}').user
    second = signed_in(conn, '{"id":"8"}')
    assert second.previous == first and conn.user == second.user


def test_signing_in_again_as_the_same_user_signs_nobody_out() -> None:
    conn = connection()
    signed_in(conn, '{"id":"7"}')
    assert signed_in(conn, '{"id":"7"}').previous is None


def test_signin_with_data_as_a_json_string_is_accepted() -> None:
    from broadcaster.protocol.signatures import user_auth

    conn = connection()
    data = json.dumps({"auth": user_auth("key", "secret", SOCKET, '{"id":"7"}'),
                       "user_data": '{"id":"7"}'})
    (action,) = conn.receive(json.dumps({"event": "pusher:signin", "data": data}), 0.0)
    assert isinstance(action, SignIn)


def test_bad_signin_closes_with_4009_and_signs_nobody_in() -> None:
    conn = connection()
    (action,) = conn.receive(signin_frame('{"id":"7"}', auth="key:bad"), 0.0)
    assert isinstance(action, Close) and action.error.code == 4009
    assert conn.user is None


def test_own_user_channel_only_after_signin() -> None:
    conn = connection()
    refused = reply_event(conn.receive(frame("pusher:subscribe", channel="#server-to-user-7",
                                             auth=""), 0.0))
    assert refused["event"] == "pusher:subscription_error"
    assert refused["data"]["status"] == 403
    signed_in(conn, '{"id":"7"}')
    ok = reply_event(conn.receive(frame("pusher:subscribe", channel="#server-to-user-7",
                                        auth=""), 0.0))
    assert ok == {"event": "pusher_internal:subscription_succeeded",
                  "channel": "#server-to-user-7", "data": "{}"}
    assert "#server-to-user-7" not in conn.channels  # delivery is by user, not by channel
    other = reply_event(conn.receive(frame("pusher:subscribe", channel="#server-to-user-8"),
                                     0.0))
    assert other["event"] == "pusher:subscription_error"
    reserved = reply_event(conn.receive(frame("pusher:subscribe", channel="#other"), 0.0))
    assert reserved["event"] == "pusher:subscription_error"


def test_signin_timeout_uses_connect_time() -> None:
    app = App(id="1", key="key", secret="secret", user_authentication_timeout=5)
    conn = PusherConnection(app, SOCKET, connected_at=100.0)
    assert conn.signin_overdue(104.0) is None
    overdue = conn.signin_overdue(105.0)
    assert overdue is not None and overdue.code == 4009
    signed_in(conn)
    assert conn.signin_overdue(1000.0) is None
    assert connection().signin_overdue(1e9) is None  # off by default


def test_client_event_carries_its_lifecycle_event() -> None:
    conn = connection()
    joined(conn, "private-chat")
    (relay,) = conn.receive(json.dumps({"event": "client-typing", "channel": "private-chat",
                                        "data": {"x": 1}}), 0.0)
    assert isinstance(relay, Relay)
    assert relay.lifecycle == {"name": "client_event", "channel": "private-chat",
                               "event": "client-typing", "data": '{"x":1}', "socket_id": SOCKET}
    joined(conn, "presence-room", '{"user_id":"42"}')
    (relay,) = conn.receive(json.dumps({"event": "client-x", "channel": "presence-room",
                                        "data": "plain"}), 0.0)
    assert isinstance(relay, Relay) and relay.lifecycle is not None
    assert relay.lifecycle["data"] == "plain" and relay.lifecycle["user_id"] == "42"


def test_watchlist_over_the_limit_keeps_the_socket_open() -> None:
    conn = connection()
    data = json.dumps({"id": "1", "watchlist": [str(i) for i in range(101)]})
    (action,) = conn.receive(signin_frame(data), 0.0)
    assert isinstance(action, Reply)
    assert json.loads(json.loads(action.text)["data"])["code"] == 4302
    assert conn.user is None
