"""REST API authentication and body validation, without HTTP."""

import json

import pytest

from broadcaster.protocol.apps import App
from broadcaster.protocol.http_api import (
    HttpError,
    authenticate,
    parse_batch_body,
    parse_events_body,
    parse_info_query,
)
from broadcaster.protocol.signatures import body_md5, sign_api_request

APP = App(id="3", key="278d425bdf160c739803", secret="7ad3773142a6692b25b8",
          max_event_data_size=100)
NOW = 1_700_000_000


def signed(method: str, path: str, body: bytes, **extra: str) -> dict[str, str]:
    params = {"auth_key": APP.key, "auth_timestamp": str(NOW), "auth_version": "1.0", **extra}
    if body:
        params["body_md5"] = body_md5(body)
    params["auth_signature"] = sign_api_request(APP.secret, method, path, params)
    return params


def status_of(call) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(HttpError) as raised:
        call()
    return raised.value.status


def test_valid_requests_pass() -> None:
    body = b'{"name":"e","channel":"c","data":"{}"}'
    authenticate(APP, "POST", "/apps/3/events", signed("POST", "/apps/3/events", body), body, NOW)
    # The Python SDK signs body_md5 of the empty body on GET: accepted as sent.
    params = signed("GET", "/apps/3/channels", b"", body_md5=body_md5(b""))
    authenticate(APP, "GET", "/apps/3/channels", params, b"", NOW)


def test_authentication_failures_are_401() -> None:
    body = b'{"name":"e","channel":"c","data":"{}"}'
    path = "/apps/3/events"
    good = signed("POST", path, body)
    cases = [
        {k: v for k, v in good.items() if k != "auth_signature"},
        {**good, "auth_key": "wrong"},
        {**good, "auth_signature": "0" * 64},
        {**good, "body_md5": body_md5(b"other")},
        {k: v for k, v in good.items() if k != "body_md5"},
        {**good, "auth_timestamp": "abc"},
    ]
    for params in cases:
        assert status_of(lambda p=params: authenticate(APP, "POST", path, p, body, NOW)) == 401
    # signed for another path, or tampered body
    assert status_of(lambda: authenticate(APP, "POST", "/apps/3/batch_events", good, body,
                                          NOW)) == 401
    assert status_of(lambda: authenticate(APP, "POST", path, good, body + b" ", NOW)) == 401


def test_timestamp_window_is_600_seconds() -> None:
    params = signed("GET", "/apps/3/channels", b"")
    authenticate(APP, "GET", "/apps/3/channels", params, b"", NOW + 600)
    assert status_of(lambda: authenticate(APP, "GET", "/apps/3/channels", params, b"",
                                          NOW + 601)) == 401
    assert status_of(lambda: authenticate(APP, "GET", "/apps/3/channels", params, b"",
                                          NOW - 601)) == 401


def test_events_body() -> None:
    trigger = parse_events_body(
        b'{"name":"e","channels":["a","b"],"data":"{\\"x\\":1}","socket_id":"1.2",'
        b'"info":"subscription_count"}', APP)
    assert trigger.channels == ("a", "b")
    assert trigger.data == '{"x":1}'
    assert trigger.socket_id == "1.2"
    assert trigger.info == ("subscription_count",)
    # non-string data is serialised, as lenient servers do
    assert parse_events_body(b'{"name":"e","channel":"a","data":{"x":1}}', APP).data == '{"x":1}'


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[]", 400),
        (b'{"channel":"a","data":"x"}', 400),
        (b'{"name":"e","data":"x"}', 400),
        (b'{"name":"e","channel":"a"}', 400),
        (b'{"name":"e","channels":[],"data":"x"}', 400),
        (b'{"name":"e","channels":"a","data":"x"}', 400),
        (b'{"name":"e","channel":"bad name","data":"x"}', 400),
        (b'{"name":"e","channel":"a","data":"x","socket_id":"abc"}', 400),
        (b'{"name":"e","channel":"a","data":"x","info":"bogus"}', 400),
        (b'{"name":"e","channel":"a","data":"x","info":"user_count"}', 400),
        (json.dumps({"name": "e", "channels": [f"c{i}" for i in range(101)], "data": "x"})
         .encode(), 400),
        (json.dumps({"name": "x" * 201, "channel": "a", "data": "x"}).encode(), 400),
        (json.dumps({"name": "e", "channel": "a", "data": "x" * 101}).encode(), 413),
    ],
)
def test_events_body_errors(body: bytes, status: int) -> None:
    assert status_of(lambda: parse_events_body(body, APP)) == status


def test_batch_body() -> None:
    batch = {"batch": [{"name": "e", "channel": f"c{i}", "data": "x"} for i in range(10)]}
    assert len(parse_batch_body(json.dumps(batch).encode(), APP)) == 10
    batch["batch"].append({"name": "e", "channel": "c", "data": "x"})
    assert status_of(lambda: parse_batch_body(json.dumps(batch).encode(), APP)) == 400
    assert status_of(lambda: parse_batch_body(b'{"batch":[]}', APP)) == 400
    assert status_of(lambda: parse_batch_body(b'{"batch":[1]}', APP)) == 400


def test_info_query() -> None:
    assert parse_info_query({"info": "user_count,subscription_count"}, "presence-x") == (
        "user_count", "subscription_count")
    assert status_of(lambda: parse_info_query({"info": "user_count"}, "private-x")) == 400
    assert HttpError(400, "bad").body() == b'{"error": "bad"}'
