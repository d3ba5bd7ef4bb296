"""Unmodified Laravel Echo (on pusher-js), configured as a Laravel app configures it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.interop.auth_endpoints import WRONG_SECRET_AUTH_PATH, NpmAuthServer
from tests.interop.conftest import JsClients
from tests.interop.npm_sdk import call, npm_sdk_calls
from tests.support.processes import Broadcaster


@pytest.mark.parametrize("broadcaster", ["reverb", "pusher"])
def test_channel_listen_with_and_without_the_leading_dot(
    js_clients: JsClients, pypi: Any, unique: Callable[[str], str], broadcaster: str
) -> None:
    channel = unique("orders")
    options: dict[str, Any] = {"cluster": "mt1"} if broadcaster == "pusher" else {}
    echo = js_clients.connect("laravel-echo", broadcaster=broadcaster, **options)
    # Without a dot Echo prefixes its namespace App.Events and turns dots into backslashes;
    # with a leading dot it listens for the name exactly as broadcast.
    echo.echo_watch("public", channel, listen=["OrderShipped", ".order.paid"], subscribed=True)
    echo.wait_echo("subscribed", channel)

    pypi.trigger(channel, "App\\Events\\OrderShipped", {"order": 1})
    pypi.trigger(channel, "order.paid", {"order": 2})

    shipped = echo.wait_echo("listen", channel, "OrderShipped")
    paid = echo.wait_echo("listen", channel, ".order.paid")
    assert shipped["payload"] == {"order": 1}
    assert paid["payload"] == {"order": 2}
    assert len(echo.echo_calls("listen", channel)) == 2


def test_private_listen(
    js_clients: JsClients, npm_auth: NpmAuthServer, pypi: Any, unique: Callable[[str], str]
) -> None:
    name = unique("App.Models.User.7")
    echo = js_clients.connect("laravel-echo", auth_endpoint=npm_auth.url(), user=("7", "Ada"))
    channel = echo.echo_watch("private", name, listen=[".invoice.paid"], subscribed=True)
    assert channel == f"private-{name}"
    echo.wait_echo("subscribed", channel)

    pypi.trigger(channel, "invoice.paid", {"amount": 42})

    assert echo.wait_echo("listen", channel, ".invoice.paid")["payload"] == {"amount": 42}


def test_join_here_joining_leaving(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    name = unique("chat")
    ada = js_clients.connect("laravel-echo", auth_endpoint=npm_auth.url(), user=("1", "Ada"))
    bob = js_clients.connect("laravel-echo", auth_endpoint=npm_auth.url(), user=("2", "Bob"))
    callbacks = {"here": True, "joining": True, "leaving": True}

    channel = ada.echo_watch("presence", name, **callbacks)
    assert ada.wait_echo("here", channel)["payload"] == [{"id": "1", "name": "Ada"}]

    bob.echo_watch("presence", name, **callbacks)
    here = bob.wait_echo("here", channel)["payload"]
    assert sorted(here, key=lambda member: str(member["id"])) == [
        {"id": "1", "name": "Ada"},
        {"id": "2", "name": "Bob"},
    ]
    assert ada.wait_echo("joining", channel)["payload"] == {"id": "2", "name": "Bob"}

    bob.leave(name)

    assert ada.wait_echo("leaving", channel)["payload"] == {"id": "2", "name": "Bob"}
    assert bob.echo_calls("joining", channel) == []


def test_whisper_reaches_listen_for_whisper(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    name = unique("conversation")
    ada = js_clients.connect("laravel-echo", auth_endpoint=npm_auth.url(), user=("1", "Ada"))
    bob = js_clients.connect("laravel-echo", auth_endpoint=npm_auth.url(), user=("2", "Bob"))
    channel = ada.echo_watch("private", name, whispers=["typing"], subscribed=True)
    bob.echo_watch("private", name, whispers=["typing"], subscribed=True)
    ada.wait_echo("subscribed", channel)
    bob.wait_echo("subscribed", channel)

    ada.whisper("private", name, "typing", {"name": "Ada", "typing": True})

    whisper = bob.wait_echo("whisper", channel, "typing")
    assert whisper["payload"] == {"name": "Ada", "typing": True}
    bob.whisper("private", name, "typing", {"name": "Bob", "typing": False})
    assert ada.wait_echo("whisper", channel, "typing")["payload"]["name"] == "Bob"
    assert [c["payload"]["name"] for c in ada.echo_calls("whisper", channel)] == ["Bob"]


def test_to_others_excludes_the_senders_socket(
    js_clients: JsClients, shared_broadcaster: Broadcaster, unique: Callable[[str], str]
) -> None:
    channel = unique("posts")
    sender = js_clients.connect("laravel-echo")
    other = js_clients.connect("laravel-echo")
    for echo in (sender, other):
        echo.echo_watch("public", channel, listen=[".post.created", ".marker"], subscribed=True)
        echo.wait_echo("subscribed", channel)
    socket_id = sender.echo_socket_id()
    assert socket_id is not None

    # What a Node backend does with the X-Socket-ID header Echo adds to the app's requests.
    results = npm_sdk_calls(
        shared_broadcaster,
        [
            call("trigger", channel, "post.created", {"id": 9}, {"socket_id": socket_id}),
            call("trigger", channel, "marker", {}),
        ],
    )

    assert [r["status"] for r in results] == [200, 200], results
    assert other.wait_echo("listen", channel, ".post.created")["payload"] == {"id": 9}
    # Events on one connection arrive in order: once the marker is in, the post never will be.
    sender.wait_echo("listen", channel, ".marker")
    assert [c["name"] for c in sender.echo_calls("listen", channel)] == [".marker"]


def test_error_callback_on_a_refused_private_channel(
    js_clients: JsClients, npm_auth: NpmAuthServer, unique: Callable[[str], str]
) -> None:
    name = unique("secrets")
    echo = js_clients.connect(
        "laravel-echo", auth_endpoint=npm_auth.url(WRONG_SECRET_AUTH_PATH), user=("1", "Ada")
    )

    channel = echo.echo_watch("private", name, error=True, subscribed=True)

    error = echo.wait_echo("error", channel)["payload"]
    assert (error["type"], error["status"]) == ("AuthError", 401), echo.transcript()
    assert echo.echo_calls("subscribed", channel) == []
    assert echo.state()["state"] == "connected"
