"""Channel kinds and names; client frame parsing; server frame shapes."""

import json

import pytest

from broadcaster.protocol import frames
from broadcaster.protocol.channels import (
    ChannelKind,
    channel_kind,
    channel_name_problem,
    event_name_problem,
)
from broadcaster.protocol.errors import InvalidMessage, MessageTooLarge, PusherError


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("chat", ChannelKind.PUBLIC),
        ("private-chat", ChannelKind.PRIVATE),
        ("private-encrypted-chat", ChannelKind.ENCRYPTED),
        ("presence-room", ChannelKind.PRESENCE),
        ("my-private-chat", ChannelKind.PUBLIC),  # prefixes count only at the start
        ("presence", ChannelKind.PUBLIC),
        ("privatechat", ChannelKind.PUBLIC),
    ],
)
def test_channel_kind(name: str, kind: ChannelKind) -> None:
    assert channel_kind(name) is kind


def test_channel_names() -> None:
    assert channel_name_problem("private-a_b=c@d,e.f;g-1") is None
    assert channel_name_problem("#server-to-user-1") is None
    assert channel_name_problem("a" * 200) is None
    assert channel_name_problem("a" * 201) is not None
    assert channel_name_problem("") is not None
    assert channel_name_problem("has space") is not None
    assert channel_name_problem("a#b") is not None
    assert channel_name_problem("ünï") is not None
    assert channel_name_problem(42) is not None


def test_event_names() -> None:
    assert event_name_problem("x" * 200) is None
    assert event_name_problem("x" * 201) is not None
    assert event_name_problem("") is not None
    assert event_name_problem(None) is not None


def test_parse_known_events() -> None:
    assert isinstance(frames.parse_client_message('{"event":"pusher:ping","data":{}}', 100),
                      frames.Ping)
    sub = frames.parse_client_message(
        '{"event":"pusher:subscribe","data":{"channel":"c","auth":"k:s","channel_data":"{}"}}',
        1000,
    )
    assert sub == frames.Subscribe("c", "k:s", "{}")
    # some clients send `data` as a JSON string
    sub = frames.parse_client_message(
        '{"event":"pusher:subscribe","data":"{\\"channel\\":\\"c\\"}"}', 1000
    )
    assert sub == frames.Subscribe("c", None, None)
    event = frames.parse_client_message(
        '{"event":"client-typing","channel":"private-c","data":{"a":1}}', 1000
    )
    assert event == frames.ClientEvent("client-typing", "private-c", '{"a":1}')


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1,2]",
        '"string"',
        '{"data":{}}',
        '{"event":5}',
        '{"event":"pusher:subscribe"}',
        '{"event":"pusher:subscribe","data":[]}',
        '{"event":"pusher:subscribe","data":{"channel":5}}',
        '{"event":"pusher:subscribe","data":{"channel":"c","auth":5}}',
        '{"event":"pusher:subscribe","data":"not json"}',
        '{"event":"pusher:unsubscribe","data":{}}',
        '{"event":"client-x","data":{}}',
        '{"event":"client-x","channel":"private-c"}',
        '{"event":"pusher:unknown","data":{}}',
        '{"event":"custom","data":{}}',
    ],
)
def test_malformed_frames_are_invalid_messages(text: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        frames.parse_client_message(text, 10_000)
    assert raised.value.code == 4200
    assert not raised.value.close


def test_size_limit_counts_bytes() -> None:
    text = '{"event":"pusher:ping","data":"' + "é" * 60 + '"}'
    frames.parse_client_message(text, len(text.encode()))
    with pytest.raises(MessageTooLarge):
        frames.parse_client_message(text, len(text.encode()) - 1)


def test_error_frame_wire_form() -> None:
    frame = json.loads(PusherError("nope", code=4009).to_frame())
    assert frame["event"] == "pusher:error"
    assert json.loads(frame["data"]) == {"code": 4009, "message": "nope"}


def test_event_frame_double_encodes_data() -> None:
    frame = json.loads(frames.event_frame("e", "c", '{"x":1}'))
    assert frame == {"event": "e", "channel": "c", "data": '{"x":1}'}
    established = json.loads(frames.connection_established("1.2", 30))
    assert json.loads(established["data"]) == {"socket_id": "1.2", "activity_timeout": 30}


def test_client_event_frame_keeps_data_and_adds_user_id() -> None:
    event = frames.ClientEvent("client-x", "presence-c", '{"a":[1,2]}')
    assert json.loads(frames.client_event_frame(event, "7")) == {
        "event": "client-x", "channel": "presence-c", "data": {"a": [1, 2]}, "user_id": "7",
    }
    assert "user_id" not in json.loads(frames.client_event_frame(event, None))


def test_presence_data_counts_unique_users() -> None:
    data = json.loads(frames.presence_data({"1": {"name": "a"}, "2": None}))
    assert data == {"presence": {"ids": ["1", "2"], "hash": {"1": {"name": "a"}, "2": None},
                                 "count": 2}}
