"""Lifecycle events reach the hub observer from real sockets (an in-process server, so the
observer can be read directly; the webhook dispatcher builds on exactly these events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from broadcaster.hub.memory import MemoryHub
from broadcaster.protocol.apps import App, AppRegistry
from broadcaster.server.node import BroadcastServer
from broadcaster.server.websocket import encode_text_frame
from tests.support.pusher_client import PusherTestClient

APP = App(id="7", key="life-key", secret="life-secret")
COUNTED = App(id="8", key="count-key", secret="count-secret", subscription_count=True)


class Observed:
    def __init__(self, hub: MemoryHub, port: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.url = f"ws://127.0.0.1:{port}/app/{APP.key}?protocol=7"
        self.counted_url = f"ws://127.0.0.1:{port}/app/{COUNTED.key}?protocol=7"
        hub.observer = lambda app, event: self.events.append({"app": app.id, **event})

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["name"] == name]

    async def wait_for(self, name: str, count: int = 1) -> list[dict[str, Any]]:
        for _ in range(100):
            if len(self.named(name)) >= count:
                return self.named(name)
            await asyncio.sleep(0.02)
        raise AssertionError(f"fewer than {count} {name}: {self.events}")


@pytest.fixture
async def observed() -> AsyncIterator[Observed]:
    hub = MemoryHub(encode_text_frame)
    server = BroadcastServer(AppRegistry([APP, COUNTED]), hub=hub)
    await server.start("127.0.0.1", 0)
    yield Observed(hub, server.port)
    await server.shutdown(grace=0.5)


async def test_client_events_are_reported_with_socket_and_presence_user(
    observed: Observed,
) -> None:
    async with PusherTestClient(observed.url) as a, PusherTestClient(observed.url) as b:
        for client in (a, b):
            await client.subscribe("private-room", key=APP.key, secret=APP.secret)
        await a.send({"event": "client-typing", "channel": "private-room", "data": {"x": 1}})
        data = '{"user_id":"u1"}'
        await a.subscribe("presence-room", key=APP.key, secret=APP.secret, channel_data=data)
        await a.send({"event": "client-wave", "channel": "presence-room", "data": "hi"})
        events = await observed.wait_for("client_event", 2)
    assert events == [
        {"app": "7", "name": "client_event", "channel": "private-room", "event": "client-typing",
         "data": '{"x":1}', "socket_id": a.socket_id},
        {"app": "7", "name": "client_event", "channel": "presence-room", "event": "client-wave",
         "data": "hi", "socket_id": a.socket_id, "user_id": "u1"},
    ]


async def test_cache_miss_and_subscription_count_are_reported(observed: Observed) -> None:
    url = observed.counted_url
    async with PusherTestClient(url) as a, PusherTestClient(url) as b:
        await a.subscribe("cache-feed")
        await b.subscribe("cache-feed")
        counts = await observed.wait_for("subscription_count", 2)
        misses = await observed.wait_for("cache_miss", 2)
    assert [c["subscription_count"] for c in counts[:2]] == [1, 2]
    assert misses == [{"app": "8", "name": "cache_miss", "channel": "cache-feed"}] * 2
    occupied = observed.named("channel_occupied")
    assert occupied == [{"app": "8", "name": "channel_occupied", "channel": "cache-feed"}]
    vacated = await observed.wait_for("channel_vacated")
    assert vacated == [{"app": "8", "name": "channel_vacated", "channel": "cache-feed"}]
    assert json.dumps(observed.events)  # every event is JSON-serializable for webhooks


async def test_held_back_subscription_count_is_sent_by_the_sweep(observed: Observed) -> None:
    clients = [PusherTestClient(observed.counted_url) for _ in range(103)]
    try:
        for client in clients:
            await client.open()
            await client.send({"event": "pusher:subscribe", "data": {"channel": "crowd"}})
        watcher = clients[0]
        seen: list[int] = []
        for _ in range(400):  # bounded: every count plus the frames around them
            event = await watcher.next_event(timeout=8)
            if event["event"] == "pusher_internal:subscription_count":
                seen.append(json.loads(event["data"])["subscription_count"])
                if seen[-1] == 103:
                    break
        # Every change up to 100; above that the throttle holds counts back and the sweep
        # sends the latest once 5 s have passed, so 101 and 102 are never sent on their own.
        assert seen[:100] == list(range(1, 101))
        assert seen[100:] == [103]
    finally:
        # The other clients never read their counts, so their libraries stopped reading the
        # socket: drop them instead of waiting for each close handshake.
        for client in clients:
            if client.ws is not None:
                client.ws.transport.abort()
