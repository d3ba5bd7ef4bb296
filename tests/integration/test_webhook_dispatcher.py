"""The dispatcher in this process against a real HTTP receiver, with shortened timings.

Covers what the hub of this branch does not emit yet (client_event, cache_miss,
subscription_count) and the limits that take minutes with Pusher's real numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from broadcaster.protocol.apps import App
from broadcaster.protocol.webhook_config import EVENT_TYPES, Webhook
from broadcaster.protocol.webhooks import WebhookTimings
from broadcaster.server.webhooks import WebhookDispatcher, WebhookStats
from tests.support.webhook_receiver import WebhookReceiver, count

FAST = WebhookTimings(hold=0.3, batch_delay=0.05, retry_first=0.1, retry_max=0.2,
                      retry_budget=1.0, request_timeout=0.5)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


async def settled(running: WebhookDispatcher, delivered: int) -> WebhookStats:
    """The stats once `delivered` events are acknowledged (the receiver records a request
    before the dispatcher reads its answer)."""
    for _ in range(200):
        if running.stats.delivered >= delivered:
            break
        await asyncio.sleep(0.02)
    return running.stats


def app_with(*hooks: Webhook) -> App:
    return App(id="1", key="k", secret="s", webhooks=hooks)


def every(url: str, prefix: str = "") -> Webhook:
    return Webhook(url, EVENT_TYPES, prefix)


@pytest.fixture
async def dispatcher(receiver: WebhookReceiver) -> AsyncIterator[tuple[App, WebhookDispatcher]]:
    app = app_with(every(receiver.url))
    running = WebhookDispatcher([app, App(id="2", key="k2", secret="s2")], timings=FAST)
    running.start()
    yield app, running
    await running.close(0.5)


async def test_other_event_types_pass_through(dispatcher: tuple[App, WebhookDispatcher],
                                              receiver: WebhookReceiver) -> None:
    app, running = dispatcher
    sent: list[dict[str, Any]] = [
        {"name": "client_event", "channel": "presence-a", "event": "client-typing",
         "data": '{"on":true}', "socket_id": "1.2", "user_id": "7"},
        {"name": "cache_miss", "channel": "cache-a"},
        {"name": "subscription_count", "channel": "a", "subscription_count": 3},
    ]
    for event in sent:
        running.record(app, event)
    assert await receiver.until(lambda e: len(e) == 3, "three events") == sent
    assert len(receiver.snapshot()) == 1, "one batch"
    request = receiver.snapshot()[0]
    assert request.headers["X-Pusher-Signature"] == hmac.new(
        b"s", request.body, hashlib.sha256).hexdigest()


async def test_apps_without_webhooks_are_ignored(dispatcher: tuple[App, WebhookDispatcher],
                                                 receiver: WebhookReceiver) -> None:
    _, running = dispatcher
    running.record(App(id="2", key="k2", secret="s2"), {"name": "cache_miss", "channel": "x"})
    await asyncio.sleep(0.2)
    assert receiver.snapshot() == [] and running.stats.pending == 0


async def test_batches_of_twenty(dispatcher: tuple[App, WebhookDispatcher],
                                 receiver: WebhookReceiver) -> None:
    app, running = dispatcher
    for i in range(45):
        running.record(app, {"name": "channel_occupied", "channel": f"c{i}"})
    await receiver.until(lambda e: len(e) == 45, "45 events")
    assert [len(r.events) for r in receiver.snapshot()] == [20, 20, 5]
    assert [e["channel"] for e in receiver.accepted_events()] == [f"c{i}" for i in range(45)]
    assert await settled(running, 45) == WebhookStats(delivered=45, retried=0, failed=0,
                                                      dropped=0, pending=0)


async def test_hold_and_cancel(dispatcher: tuple[App, WebhookDispatcher],
                               receiver: WebhookReceiver) -> None:
    app, running = dispatcher
    running.record(app, {"name": "member_removed", "channel": "presence-a", "user_id": "1"})
    running.record(app, {"name": "member_added", "channel": "presence-a", "user_id": "1"})
    running.record(app, {"name": "channel_vacated", "channel": "b"})
    await receiver.until(lambda e: len(e) == 1, "vacated after the hold")
    await asyncio.sleep(0.4)
    assert receiver.accepted_events() == [{"name": "channel_vacated", "channel": "b"}]


async def test_given_up_after_the_retry_budget(receiver: WebhookReceiver) -> None:
    receiver.status = 500
    app = app_with(every(receiver.url))
    running = WebhookDispatcher([app], timings=FAST)
    running.start()
    running.record(app, {"name": "cache_miss", "channel": "x"})
    await asyncio.sleep(1.4)
    stats = running.stats
    assert stats.failed == 1 and stats.delivered == 0 and stats.pending == 0
    assert stats.retried == len(receiver.snapshot()) - 1 >= 3
    await running.close(0.1)


async def test_timeout_counts_as_failure(receiver: WebhookReceiver) -> None:
    receiver.delay = 0.8  # longer than the request timeout below
    receiver.answer_deadline = 0.5
    app = app_with(every(receiver.url))
    running = WebhookDispatcher([app], timings=WebhookTimings(
        batch_delay=0.05, retry_first=0.1, request_timeout=0.5))
    running.start()
    running.record(app, {"name": "cache_miss", "channel": "x"})
    await asyncio.sleep(0.7)
    receiver.delay = 0.0
    await receiver.until(lambda e: len(e) == 1, "delivery after a time-out")
    stats = await settled(running, 1)
    assert stats.retried >= 1 and stats.delivered == 1 and stats.failed == 0
    await running.close(0.1)


async def test_dead_url_does_not_delay_a_healthy_one(receiver: WebhookReceiver) -> None:
    dead = WebhookReceiver()  # never started: connection refused
    app = app_with(every(dead.url), every(receiver.url))
    running = WebhookDispatcher([app], timings=WebhookTimings(batch_delay=0.05))
    running.start()
    started = time.monotonic()
    for i in range(5):
        running.record(app, {"name": "cache_miss", "channel": f"x{i}"})
        await asyncio.sleep(0.1)
    await receiver.until(lambda e: len(e) == 5, "healthy deliveries")
    assert max(r.at for r in receiver.snapshot()) - started < 1.5
    await running.close(0.1)
    assert running.stats.failed == 5, "the dead URL's events are counted at shutdown"


async def test_overflow_is_counted(receiver: WebhookReceiver,
                                   caplog: pytest.LogCaptureFixture) -> None:
    receiver.down()
    app = app_with(every(receiver.url))
    running = WebhookDispatcher([app], timings=WebhookTimings(max_pending=10))
    running.start()
    for i in range(25):
        running.record(app, {"name": "cache_miss", "channel": f"x{i}"})
    assert running.stats.dropped == 15 and running.stats.pending == 10
    assert "webhook queue full" in caplog.text
    await running.close(0.0)
    assert running.stats.failed == 10


async def test_close_flushes_holds_within_grace(receiver: WebhookReceiver) -> None:
    app = app_with(every(receiver.url))
    running = WebhookDispatcher([app])  # Pusher's timings: a 3 s hold, 250 ms batches
    running.start()
    running.record(app, {"name": "channel_vacated", "channel": "a"})
    running.record(app, {"name": "channel_occupied", "channel": "b"})
    started = time.monotonic()
    await running.close(2.0)
    assert time.monotonic() - started < 1.0
    assert count(receiver.accepted_events(), "channel_vacated", "a") == 1
    assert running.stats == WebhookStats(delivered=2, retried=0, failed=0, dropped=0, pending=0)
    running.record(app, {"name": "channel_occupied", "channel": "late"})
    assert running.stats.dropped == 1
