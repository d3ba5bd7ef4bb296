"""Webhooks end to end: a real broadcaster process, real WebSocket clients, a real receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT, Broadcaster, running_broadcaster
from tests.support.pusher_client import PusherTestClient
from tests.support.webhook_receiver import WebhookReceiver, count

ALL = ["channel_occupied", "channel_vacated", "member_added", "member_removed"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def hooks_env(*hooks: dict[str, object]) -> dict[str, str]:
    return {"REVERB_APP_WEBHOOKS": json.dumps(list(hooks))}


@pytest.fixture
def server(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[Broadcaster]:
    env = hooks_env({"url": receiver.url, "event_types": ALL})
    with running_broadcaster(tmp_path, extra_env=env) as broadcaster:
        yield broadcaster


def presence_data(user: str) -> str:
    return json.dumps({"user_id": user, "user_info": {"name": f"user {user}"}})


async def test_occupied_then_vacated_after_the_hold(server: Broadcaster,
                                                    receiver: WebhookReceiver) -> None:
    async with PusherTestClient(server.ws_url) as client:
        await client.subscribe("news")
        await receiver.until(lambda e: count(e, "channel_occupied", "news") == 1, "occupied")
        left = time.monotonic()
        await client.send({"event": "pusher:unsubscribe", "data": {"channel": "news"}})
        await receiver.until(lambda e: count(e, "channel_vacated", "news") == 1, "vacated")
    vacated_at = receiver.snapshot()[-1].at
    assert 2.9 <= vacated_at - left < 4.5, "vacated is held 3 s, then batched (250 ms)"
    request = receiver.snapshot()[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Pusher-Key"] == server.key
    expected = hmac.new(server.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Pusher-Signature"] == expected
    assert abs(request.payload["time_ms"] / 1000 - time.time()) < 30


async def test_member_added_and_removed(server: Broadcaster, receiver: WebhookReceiver) -> None:
    alice, bob = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
    await alice.open()
    await bob.open()
    for client, user in ((alice, "1"), (bob, "2")):
        await client.subscribe("presence-room", key=server.key, secret=server.secret,
                               channel_data=presence_data(user))
    events = await receiver.until(lambda e: count(e, "member_added") == 2, "member_added x2")
    assert {e["user_id"] for e in events if e["name"] == "member_added"} == {"1", "2"}
    assert count(events, "channel_occupied", "presence-room") == 1
    await bob.close()
    events = await receiver.until(lambda e: count(e, "member_removed") == 1, "member_removed")
    assert [e for e in events if e["name"] == "member_removed"] == [
        {"name": "member_removed", "channel": "presence-room", "user_id": "2"}]
    await alice.close()
    await receiver.until(lambda e: count(e, "channel_vacated", "presence-room") == 1, "vacated")


async def test_quick_comeback_sends_nothing(server: Broadcaster,
                                            receiver: WebhookReceiver) -> None:
    async with PusherTestClient(server.ws_url) as client:
        await client.subscribe("blinking")
        await receiver.until(lambda e: count(e, "channel_occupied") == 1, "occupied")
        await client.send({"event": "pusher:unsubscribe", "data": {"channel": "blinking"}})
        await asyncio.sleep(0.2)
        await client.subscribe("blinking")
        await asyncio.sleep(3.6)  # past the hold and a batch delay
    events = receiver.accepted_events()
    assert count(events, "channel_vacated") == 0 and count(events, "channel_occupied") == 1, events


async def test_retried_after_500_until_accepted(server: Broadcaster,
                                                receiver: WebhookReceiver) -> None:
    receiver.fail_next(2)
    async with PusherTestClient(server.ws_url) as client:
        await client.subscribe("flaky")
        await receiver.until(lambda e: count(e, "channel_occupied", "flaky") == 1, "occupied",
                             timeout=8)
    attempts = receiver.snapshot()
    assert [r.status for r in attempts] == [500, 500, 200]
    assert len({r.body for r in attempts}) == 1, "a retry sends the same signed body"
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert 0.8 < gaps[0] < 1.8 and 1.8 < gaps[1] < 3.0, gaps  # backoff 1 s, then 2 s


async def test_receiver_down_then_back(server: Broadcaster, receiver: WebhookReceiver) -> None:
    receiver.down()
    async with PusherTestClient(server.ws_url) as client:
        await client.subscribe("outage")
        await asyncio.sleep(2.0)
        receiver.start()
        await receiver.until(lambda e: count(e, "channel_occupied", "outage") == 1,
                             "occupied after recovery", timeout=8)


async def test_slow_url_does_not_delay_another(tmp_path: Path) -> None:
    slow, fast = WebhookReceiver().start(), WebhookReceiver().start()
    slow.delay = 6.0  # beyond the 4 s deadline: a time-out, then retried
    config = tmp_path / "apps.toml"
    config.write_text(f"""
[[apps]]
id = "7"
key = "toml-key"
secret = "toml-secret"

[[apps.webhooks]]
url = "{slow.url}"
event_types = ["channel_occupied"]

[[apps.webhooks]]
url = "{fast.url}"
event_types = ["channel_occupied"]
filter = {{ channel_name_starts_with = "private-" }}
headers = {{ X-Tenant = "blue" }}
""")
    try:
        with running_broadcaster(tmp_path, key="toml-key", secret="toml-secret", app_id="7",
                                 extra_env={"REVERB_APP_ID": "", "REVERB_APP_KEY": "",
                                            "REVERB_APP_SECRET": ""},
                                 extra_args=["--config", str(config)]) as broadcaster:
            async with PusherTestClient(broadcaster.ws_url) as client:
                started = time.monotonic()
                await client.subscribe("public-x")
                await client.subscribe("private-x", key="toml-key", secret="toml-secret")
                events = await fast.until(lambda e: len(e) >= 1, "fast delivery", timeout=3)
                assert time.monotonic() - started < 2.0, "not held up by the slow URL"
                assert events == [{"name": "channel_occupied", "channel": "private-x"}]
                assert fast.snapshot()[0].headers["X-Tenant"] == "blue"
                slow.delay = 0.0
                slow_events = await slow.until(lambda e: len(e) >= 2, "slow delivery",
                                               timeout=12)
                assert {e["channel"] for e in slow_events} == {"public-x", "private-x"}
                assert len(slow.snapshot()) >= 2, "the timed-out POST was retried"
    finally:
        slow.stop()
        fast.stop()


async def test_shutdown_sends_held_events(tmp_path: Path, receiver: WebhookReceiver) -> None:
    env = hooks_env({"url": receiver.url, "event_types": ["channel_vacated"]})
    with running_broadcaster(tmp_path, extra_env=env) as broadcaster:
        async with PusherTestClient(broadcaster.ws_url) as client:
            await client.subscribe("closing")
        await asyncio.sleep(0.2)
        started = time.monotonic()
        broadcaster.stop()  # SIGTERM while channel_vacated is still held
        assert time.monotonic() - started < 2.5
    assert receiver.accepted_events() == [{"name": "channel_vacated", "channel": "closing"}]


def test_bad_webhook_config_is_refused() -> None:
    env = {**os.environ, "REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
           "REVERB_APP_WEBHOOKS": '[{"url": "ftp://127.0.0.1/", "event_types": ["x"]}]'}
    done = subprocess.run([sys.executable, "-m", "broadcaster", "serve", "--port", "0"],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=20,
                          check=False)
    assert done.returncode == 2
    assert "REVERB_APP_WEBHOOKS" in done.stderr and "http:// or https://" in done.stderr


async def test_client_cache_miss_and_subscription_count_events(tmp_path: Path,
                                                               receiver: WebhookReceiver) -> None:
    """The events that come from the protocol layer, through the real process end to end."""
    env = {**hooks_env({"url": receiver.url,
                        "event_types": ["client_event", "cache_miss", "subscription_count"]}),
           "REVERB_APP_SUBSCRIPTION_COUNT": "true"}
    with running_broadcaster(tmp_path, extra_env=env) as broadcaster:
        key, secret = broadcaster.key, broadcaster.secret
        async with PusherTestClient(broadcaster.ws_url) as alice, \
                PusherTestClient(broadcaster.ws_url) as bob:
            await alice.subscribe("cache-scores")
            await alice.expect("pusher:cache_miss")
            await alice.expect("pusher_internal:subscription_count")
            for client, user in ((alice, "1"), (bob, "2")):
                await client.subscribe("presence-chat", key=key, secret=secret,
                                       channel_data=presence_data(user))
            await alice.send({"event": "client-typing", "channel": "presence-chat",
                              "data": {"typing": True}})
            await bob.expect("client-typing")
            await bob.subscribe("counted")
            events = await receiver.until(
                lambda e: count(e, "client_event") == 1 and count(e, "cache_miss") == 1
                and count(e, "subscription_count", "counted") == 1, "protocol events")
    client_event = next(e for e in events if e["name"] == "client_event")
    assert client_event["channel"] == "presence-chat"
    assert client_event["event"] == "client-typing"
    assert json.loads(client_event["data"]) == {"typing": True}
    assert client_event["user_id"] == "1"
    assert client_event["socket_id"] == alice.socket_id
    assert {"name": "cache_miss", "channel": "cache-scores"} in events
    counted = next(e for e in events
                   if e["name"] == "subscription_count" and e["channel"] == "counted")
    assert counted["subscription_count"] == 1
    # presence channels have members, not subscription counts
    assert count(events, "subscription_count", "presence-chat") == 0
    assert {"name": "subscription_count", "channel": "cache-scores",
            "subscription_count": 1} in events
