"""The unmodified npm `pusher` server SDK against the broadcaster, observed through pusher-js."""

from __future__ import annotations

from collections.abc import Callable

from tests.interop.conftest import JsClients
from tests.interop.npm_sdk import call, npm_sdk_calls
from tests.support.processes import Broadcaster


def test_trigger_one_and_several_channels(
    js_clients: JsClients, shared_broadcaster: Broadcaster, unique: Callable[[str], str]
) -> None:
    single, first, second = unique("npm-one"), unique("npm-many"), unique("npm-many")
    client = js_clients.connect()
    for channel in (single, first, second):
        client.subscribed(channel)

    results = npm_sdk_calls(
        shared_broadcaster,
        [
            call("trigger", single, "greeting", {"hello": "node"}),
            call("trigger", [first, second], "fan-out", {"n": 2}),
        ],
    )

    assert [(r["kind"], r["status"], r["body"]) for r in results] == [("response", 200, {})] * 2
    assert client.wait_event(single, "greeting")["data"] == {"hello": "node"}
    assert client.wait_event(first, "fan-out")["data"] == {"n": 2}
    assert client.wait_event(second, "fan-out")["data"] == {"n": 2}


def test_trigger_batch(
    js_clients: JsClients, shared_broadcaster: Broadcaster, unique: Callable[[str], str]
) -> None:
    first, second = unique("npm-batch"), unique("npm-batch")
    client = js_clients.connect()
    client.subscribed(first)
    client.subscribed(second)

    [result] = npm_sdk_calls(
        shared_broadcaster,
        [
            call(
                "triggerBatch",
                [
                    {"channel": first, "name": "one", "data": {"i": 1}},
                    {"channel": second, "name": "two", "data": "plain"},
                ],
            )
        ],
    )

    assert (result["kind"], result["status"], result["body"]) == ("response", 200, {})
    assert client.wait_event(first, "one")["data"] == {"i": 1}
    assert client.wait_event(second, "two")["data"] == "plain"


def test_get_channels(
    js_clients: JsClients, shared_broadcaster: Broadcaster, unique: Callable[[str], str]
) -> None:
    prefix = unique("npm-get")
    client = js_clients.connect()
    client.subscribed(f"{prefix}-a")
    client.subscribed(f"{prefix}-b")

    everything, filtered = npm_sdk_calls(
        shared_broadcaster,
        [
            call("get", {"path": "/channels"}),
            call("get", {"path": "/channels", "params": {"filter_by_prefix": prefix}}),
        ],
    )

    assert everything["status"] == 200, everything
    assert {f"{prefix}-a", f"{prefix}-b"} <= set(everything["body"]["channels"])
    assert filtered["status"] == 200, filtered
    assert set(filtered["body"]["channels"]) == {f"{prefix}-a", f"{prefix}-b"}


def test_wrong_secret_gets_http_401(shared_broadcaster: Broadcaster) -> None:
    results = npm_sdk_calls(
        shared_broadcaster,
        [call("trigger", "npm-wrong", "event", {}), call("get", {"path": "/channels"})],
        secret="not-the-app-secret",
    )

    for result in results:
        assert (result["kind"], result["status"]) == ("request_error", 401), result
        assert "error" in result["body"], result
