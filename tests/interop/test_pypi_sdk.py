"""The unmodified PyPI `pusher` server SDK against the broadcaster, observed through pusher-js."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pusher.errors
import pytest

from tests.interop.auth_endpoints import WRONG_SECRET_AUTH_PATH, PypiAuthServer, pypi_client
from tests.interop.conftest import JsClients
from tests.support.processes import Broadcaster


def test_trigger_one_channel(
    js_clients: JsClients, pypi: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("py-one")
    client = js_clients.connect()
    client.subscribed(channel)

    assert pypi.trigger(channel, "greeting", {"hello": "world"}) == {}

    assert client.wait_event(channel, "greeting")["data"] == {"hello": "world"}


def test_trigger_several_channels(
    js_clients: JsClients, pypi: Any, unique: Callable[[str], str]
) -> None:
    channels = [unique("py-many") for _ in range(3)]
    client = js_clients.connect()
    for channel in channels:
        client.subscribed(channel)

    assert pypi.trigger(channels, "fan-out", {"n": 1}) == {}

    for channel in channels:
        assert client.wait_event(channel, "fan-out")["data"] == {"n": 1}


def test_trigger_batch(js_clients: JsClients, pypi: Any, unique: Callable[[str], str]) -> None:
    first, second = unique("py-batch"), unique("py-batch")
    client = js_clients.connect()
    client.subscribed(first)
    client.subscribed(second)

    response = pypi.trigger_batch(
        [
            {"channel": first, "name": "one", "data": {"i": 1}},
            {"channel": second, "name": "two", "data": "second"},
        ]
    )

    assert response == {}
    assert client.wait_event(first, "one")["data"] == {"i": 1}
    assert client.wait_event(second, "two")["data"] == "second"


def test_channels_info_filters_by_prefix_and_counts_presence_users(
    js_clients: JsClients, pypi_auth: PypiAuthServer, pypi: Any, unique: Callable[[str], str]
) -> None:
    prefix = unique("py-info")
    room = f"presence-{prefix}-room"
    ada = js_clients.connect(auth_endpoint=pypi_auth.url(), user=("1", "Ada"))
    ada_again = js_clients.connect(auth_endpoint=pypi_auth.url(), user=("1", "Ada"))
    bob = js_clients.connect(auth_endpoint=pypi_auth.url(), user=("2", "Bob"))
    ada.subscribed(f"{prefix}-a")
    bob.subscribed(f"{prefix}-b")
    for client in (ada, ada_again, bob):
        client.subscribed(room)
    bob.subscribed(unique("py-elsewhere"))

    public = pypi.channels_info(prefix_filter=prefix)
    presence = pypi.channels_info(prefix_filter=f"presence-{prefix}", attributes=["user_count"])

    assert set(public["channels"]) == {f"{prefix}-a", f"{prefix}-b"}
    assert presence == {"channels": {room: {"user_count": 2}}}


def test_channel_info_counts_users_and_subscriptions(
    js_clients: JsClients, pypi_auth: PypiAuthServer, pypi: Any, unique: Callable[[str], str]
) -> None:
    public, room = unique("py-channel"), unique("presence-py-channel")
    ada = js_clients.connect(auth_endpoint=pypi_auth.url(), user=("1", "Ada"))
    ada_again = js_clients.connect(auth_endpoint=pypi_auth.url(), user=("1", "Ada"))
    for client in (ada, ada_again):
        client.subscribed(public)
        client.subscribed(room)

    public_info = pypi.channel_info(public, attributes=["subscription_count"])
    room_info = pypi.channel_info(room, attributes=["user_count"])
    empty_info = pypi.channel_info(unique("py-nobody"))

    assert public_info == {"occupied": True, "subscription_count": 2}
    assert room_info == {"occupied": True, "user_count": 1}
    assert empty_info == {"occupied": False}


def test_users_info_lists_each_presence_user_once(
    js_clients: JsClients, pypi_auth: PypiAuthServer, pypi: Any, unique: Callable[[str], str]
) -> None:
    room = unique("presence-py-users")
    for user in (("1", "Ada"), ("1", "Ada"), ("2", "Bob")):
        js_clients.connect(auth_endpoint=pypi_auth.url(), user=user).subscribed(room)

    users = pypi.users_info(room)

    assert sorted(users["users"], key=lambda user: str(user["id"])) == [{"id": "1"}, {"id": "2"}]


def test_socket_id_excludes_that_connection(
    js_clients: JsClients, pypi: Any, unique: Callable[[str], str]
) -> None:
    channel = unique("py-except")
    sender, other = js_clients.connect(), js_clients.connect()
    sender.subscribed(channel)
    other.subscribed(channel)

    pypi.trigger(channel, "edited", {"v": 1}, socket_id=sender.state()["socket_id"])
    pypi.trigger(channel, "marker", {})

    assert other.wait_event(channel, "edited")["data"] == {"v": 1}
    # Events on one connection arrive in order: once the marker is in, "edited" never will be.
    sender.wait_event(channel, "marker")
    assert sender.events(channel, "edited") == []


def test_authenticate_helper_signs_subscriptions_the_server_accepts(
    js_clients: JsClients, pypi_auth: PypiAuthServer, unique: Callable[[str], str]
) -> None:
    private, room = unique("private-py-auth"), unique("presence-py-auth")
    client = js_clients.connect(auth_endpoint=pypi_auth.url(), user=("5", "Eve"))

    assert client.subscribed(private) == {}
    members = client.subscribed(room)

    assert members["members"] == {"5": {"id": "5", "name": "Eve"}}
    signed = {request["channel"] for request in pypi_auth.requests}
    assert {private, room} <= signed


def test_authenticate_with_the_wrong_secret_is_refused(
    js_clients: JsClients, pypi_auth: PypiAuthServer, unique: Callable[[str], str]
) -> None:
    channel = unique("private-py-refused")
    refusing_endpoint = pypi_auth.url(WRONG_SECRET_AUTH_PATH)
    client = js_clients.connect(auth_endpoint=refusing_endpoint, user=("5", "Eve"))

    client.subscribe(channel)

    error = client.wait_event(channel, "pusher:subscription_error")["data"]
    assert (error["type"], error["status"]) == ("AuthError", 401)


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk: sdk.trigger("py-wrong-secret", "event", {}),
        lambda sdk: sdk.channels_info(),
        lambda sdk: sdk.channel_info("py-wrong-secret"),
    ],
    ids=["trigger", "channels_info", "channel_info"],
)
def test_wrong_secret_gets_http_401(
    shared_broadcaster: Broadcaster, call: Callable[[Any], object]
) -> None:
    sdk = pypi_client(shared_broadcaster, secret="not-the-app-secret")

    # The SDK raises PusherBadAuth for a 401 answer and only for that status.
    with pytest.raises(pusher.errors.PusherBadAuth) as refused:
        call(sdk)

    assert "error" in str(refused.value)
