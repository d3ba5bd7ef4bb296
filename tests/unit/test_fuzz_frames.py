"""Whatever a client sends, the protocol layer answers without raising."""

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broadcaster.protocol.apps import App
from broadcaster.protocol.connection import Close, PusherConnection
from broadcaster.protocol.http_api import HttpError, parse_batch_body, parse_events_body

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
def test_connection_never_raises_and_never_closes_on_client_input(texts: list[str]) -> None:
    conn = PusherConnection(APP, "1.1")
    for i, text in enumerate(texts):
        actions = conn.receive(text, float(i))
        assert not any(isinstance(action, Close) for action in actions)


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
