"""Whatever a client sends, the protocol layer answers without raising."""

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broadcaster.protocol.apps import App
from broadcaster.protocol.connection import Close, PusherConnection, Reply, SignIn
from broadcaster.protocol.http_api import HttpError, parse_batch_body, parse_events_body
from broadcaster.protocol.signatures import user_auth

APP = App(id="1", key="k", secret="s")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
events = st.sampled_from(["pusher:subscribe", "pusher:unsubscribe", "pusher:ping",
                          "pusher:pong", "client-x", "pusher:signin", "other"])


@st.composite
def pusher_like(draw: st.DrawFn) -> str:
    message: dict[str, Any] = {"event": draw(events)}
    if draw(st.booleans()):
        message["data"] = draw(json_values | st.fixed_dictionaries(
            {"channel": st.text(max_size=30) | st.sampled_from(["private-a", "presence-b", "c"])},
            optional={"auth": json_values, "channel_data": json_values}))
    if draw(st.booleans()):
        message["channel"] = draw(json_values)
    return json.dumps(message)


@settings(max_examples=400, deadline=None)
@given(st.lists(pusher_like() | st.text(max_size=200), min_size=1, max_size=8))
def test_connection_never_raises_and_closes_only_for_a_failed_signin(texts: list[str]) -> None:
    conn = PusherConnection(APP, "1.1")
    for i, text in enumerate(texts):
        actions = conn.receive(text, float(i))
        closes = [action for action in actions if isinstance(action, Close)]
        if closes:
            # An unsigned sign-in is the one client mistake that closes the socket (4009).
            assert json.loads(text)["event"] == "pusher:signin"
            assert [c.error.code for c in closes] == [4009]


user_ids = st.text(min_size=0, max_size=8) | st.integers() | st.none()
user_datas = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.fixed_dictionaries(
        {"id": user_ids},
        optional={"watchlist": st.lists(st.text(max_size=4), max_size=120) | json_values,
                  "name": json_values},
    ).map(json.dumps),
)


@settings(max_examples=300, deadline=None)
@given(user_datas)
def test_signed_signin_succeeds_or_gets_its_pusher_code(user_data: str) -> None:
    conn = PusherConnection(APP, "1.1")
    auth = user_auth(APP.key, APP.secret, "1.1", user_data)
    (action,) = conn.receive(json.dumps({"event": "pusher:signin",
                                         "data": {"auth": auth, "user_data": user_data}}), 0.0)
    if isinstance(action, SignIn):
        parsed = json.loads(user_data)
        assert action.user.id == parsed["id"] and isinstance(parsed["id"], str)
        assert action.user.user_data == user_data
        assert len(action.user.watchlist) <= 100
        assert conn.user == action.user
    elif isinstance(action, Close):
        assert action.error.code == 4009
        assert conn.user is None
    else:
        assert isinstance(action, Reply)
        error = json.loads(json.loads(action.text)["data"])
        assert error["code"] == 4302
        assert len(json.loads(user_data)["watchlist"]) > 100
        assert conn.user is None


@settings(max_examples=200, deadline=None)
@given(user_datas, st.text(max_size=80) | st.sampled_from(["k:", "k:00", "wrong:sig"]))
def test_signin_with_a_wrong_signature_always_closes_with_4009(user_data: str, auth: str) -> None:
    conn = PusherConnection(APP, "1.1")
    (action,) = conn.receive(json.dumps({"event": "pusher:signin",
                                         "data": {"auth": auth, "user_data": user_data}}), 0.0)
    assert isinstance(action, Close) and action.error.code == 4009
    assert conn.user is None


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_http_bodies_are_accepted_or_refused_with_a_status(value: object) -> None:
    body = json.dumps(value).encode()
    for parse in (parse_events_body, parse_batch_body):
        try:
            parse(body, APP)
        except HttpError as exc:
            assert exc.status in (400, 413)


def test_deeply_nested_http_bodies_are_400() -> None:
    for body in (b"[" * 10_000 + b"]" * 10_000, b'{"name":"e","data":' + b"[" * 10_000):
        for parse in (parse_events_body, parse_batch_body):
            try:
                parse(body, APP)
            except HttpError as exc:
                assert exc.status == 400
            else:
                raise AssertionError("accepted a malformed body")


def test_deeply_nested_frames_are_4200_and_keep_the_socket() -> None:
    conn = PusherConnection(App(id="1", key="k", secret="s", max_message_size=100_000), "1.1")
    nested = "[" * 20_000 + "]" * 20_000
    texts = [nested, '{"event":"client-x","channel":"private-a","data":' + nested + "}",
             '{"event":"pusher:subscribe","data":"' + "[" * 20_000 + '"}']
    for text in texts:
        (action,) = conn.receive(text, 0.0)
        assert not isinstance(action, Close)
        assert json.loads(json.loads(action.text)["data"])["code"] == 4200  # type: ignore[union-attr]
