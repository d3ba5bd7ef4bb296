"""The hand-written encoders on the publish path give the same bytes as the general ones."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from websockets.frames import Frame, Opcode

from broadcaster.protocol.frames import event_frame
from broadcaster.protocol.http_api import parse_query
from broadcaster.server.http_response import encode_response
from broadcaster.server.rest import route_label
from broadcaster.server.websocket import encode_text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_text_frames_match_websockets_serializer(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert encode_text_frame(text) == expected


@pytest.mark.parametrize(("event", "channel", "data", "user_id"), [
    ("e", "c", "d", None),
    ("pusher:connection_established", None, '{"socket_id":"1.2"}', None),
    ('q"uote\\', "private-é", "line\nbreak\u2028\x00", "user 1"),
])
def test_event_frames_match_json_dumps(event: str, channel: str | None, data: str,
                                       user_id: str | None) -> None:
    message = {"event": event, **({"channel": channel} if channel is not None else {}),
               "data": data, **({"user_id": user_id} if user_id is not None else {})}
    assert event_frame(event, channel, data, user_id) == json.dumps(message, separators=(",", ":"))


@pytest.mark.parametrize("query", ["auth_key=k&auth_timestamp=1&body_md5=ab", "a&b=&a=2",
                                   "x=%20y&z=a+b", "", "&&a=b=c", "info=user_count,subscription"])
def test_query_parsing_matches_parse_qsl(query: str) -> None:
    assert parse_query(query) == dict(parse_qsl(query, keep_blank_values=True))


def test_response_head_and_body() -> None:
    response = encode_response(429, b'{"error":"slow"}', [(b"retry-after", b"2")], close=True)
    assert response == (b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                        b"content-length: 16\r\nretry-after: 2\r\nconnection: close\r\n\r\n"
                        b'{"error":"slow"}')
    head_only = encode_response(200, b"{}", head_only=True)
    assert head_only.endswith(b"content-length: 2\r\n\r\n")


@pytest.mark.parametrize(("path", "label"), [
    ("/apps/1/events", "events"), ("/apps/1/batch_events", "batch_events"),
    ("/apps//events", "other"), ("/apps/1/x/events", "other"), ("/x/apps/1/events", "other"),
    ("/apps/1/channels/c/users", "channel_users"), ("/apps/1/channels/c", "channel"),
    ("/apps/1/channels", "channels"), ("/up", "up"), ("/ready", "ready"), ("/", "other"),
])
def test_route_labels(path: str, label: str) -> None:
    assert route_label(path) == label


@pytest.mark.parametrize("text", [
    "{}", '{"a":1}', '{"a":1} ', ' {"a":1}', '{"a":1}}', '{"a":1} {"b":2}', '{"a"}', "{",
    '{"a":NaN}', '{"a":1,"a":2}', '{"x":"\\u00e9\\ud800"}', '{"a":[1,{"b":null}]}', "[1]",
    '"{}"', "{" * 50_000 + "}" * 50_000, '{"a":' * 100_000 + "1" + "}" * 100_000,
])
def test_parse_json_matches_json_loads(text: str) -> None:
    from broadcaster.protocol.encoding import parse_json

    try:
        expected: object = ("value", json.loads(text))
    except RecursionError:
        expected = ("error", "JSON nested too deeply")
    except ValueError as exc:
        expected = ("error", str(exc))
    try:
        got: object = ("value", parse_json(text))
    except ValueError as exc:
        got = ("error", str(exc))
    assert repr(got) == repr(expected)  # repr: NaN != NaN


@pytest.mark.parametrize(("query", "sdk_form"), [
    ("auth_key=k&auth_timestamp=1&auth_version=1.0&body_md5=abc&auth_signature=s", True),
    ("auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=s", True),
    ("auth_key=&auth_timestamp=&auth_version=&auth_signature=", True),
    # not the SDKs' form: parsed and signed the general way
    ("auth_timestamp=1&auth_key=k&auth_version=1.0&auth_signature=s", False),
    ("auth_key=k%20x&auth_timestamp=1&auth_version=1.0&auth_signature=s", False),
    ("auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=s&info=x", False),
    ("auth_key=k&auth_timestamp=1&auth_version=1.0&body_md5=a=b&auth_signature=s", False),
    ("AUTH_KEY=k&auth_timestamp=1&auth_version=1.0&auth_signature=s", False),
    ("auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=s&auth_signature=t", False),
])
def test_signed_query_is_the_sorted_query(query: str, sdk_form: bool) -> None:
    from broadcaster.protocol.http_api import parse_signed_query
    from broadcaster.protocol.signatures import api_string_to_sign

    params, signed = parse_signed_query(query)
    assert params == parse_query(query)
    assert list(params) == list(parse_query(query))
    assert (signed is not None) == sdk_form
    if signed is not None:
        assert api_string_to_sign("POST", "/p", params, signed) == api_string_to_sign(
            "POST", "/p", params)
