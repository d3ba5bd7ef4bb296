"""The pure webhook rules: filters, the 3 s hold, batching, signature, retries, overflow."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from broadcaster.protocol.webhook_config import EVENT_TYPES, Webhook, parse_webhooks
from broadcaster.protocol.webhooks import (
    HoldBook,
    Outbox,
    WebhookRoute,
    WebhookTimings,
    encode_body,
    request_headers,
    retry_delay,
    retry_schedule,
)

DEFAULTS = WebhookTimings()


def occupied(channel: str) -> dict[str, Any]:
    return {"name": "channel_occupied", "channel": channel}


def vacated(channel: str) -> dict[str, Any]:
    return {"name": "channel_vacated", "channel": channel}


def added(channel: str, user: str) -> dict[str, Any]:
    return {"name": "member_added", "channel": channel, "user_id": user}


def removed(channel: str, user: str) -> dict[str, Any]:
    return {"name": "member_removed", "channel": channel, "user_id": user}


def route(types: set[str] | frozenset[str] = EVENT_TYPES, prefix: str = "",
          **timings: Any) -> WebhookRoute:
    hook = Webhook("http://127.0.0.1:9/hook", frozenset(types), prefix)
    return WebhookRoute(hook, WebhookTimings(**timings))


def sent(r: WebhookRoute) -> list[dict[str, Any]]:
    return [event for batch in r.outbox.sealed for event in batch.events] + r.outbox.forming


def test_pusher_defaults() -> None:
    assert (DEFAULTS.hold, DEFAULTS.batch_delay, DEFAULTS.batch_size) == (3.0, 0.25, 20)
    assert (DEFAULTS.request_timeout, DEFAULTS.retry_budget) == (4.0, 300.0)


# ------------------------------------------------------------------ filters

def test_event_type_and_prefix_filter() -> None:
    hook = Webhook("http://h/", frozenset({"channel_occupied"}), "private-")
    assert hook.wants(occupied("private-a"))
    assert not hook.wants(occupied("public-a"))
    assert not hook.wants({"name": "cache_miss", "channel": "private-a"})


def test_route_applies_type_and_prefix() -> None:
    r = route({"client_event", "cache_miss"}, prefix="presence-")
    r.offer({"name": "client_event", "channel": "presence-a", "event": "client-x"}, 0.0, 1)
    r.offer({"name": "client_event", "channel": "private-a", "event": "client-x"}, 0.0, 1)
    r.offer({"name": "cache_miss", "channel": "presence-cache-a"}, 0.0, 1)
    r.offer({"name": "subscription_count", "channel": "presence-a",
             "subscription_count": 2}, 0.0, 1)
    assert [e["channel"] for e in sent(r)] == ["presence-a", "presence-cache-a"]


# ------------------------------------------------------------------ the hold

def test_vacated_is_held_three_seconds_then_released() -> None:
    book = HoldBook(DEFAULTS.hold, 100)
    assert book.offer(vacated("a"), 10.0) is None
    assert book.next_deadline() == 13.0
    assert book.due(12.99) == []
    assert book.due(13.0) == [vacated("a")]
    assert len(book) == 0


def test_comeback_within_hold_cancels_both() -> None:
    book = HoldBook(3.0, 100)
    assert book.offer(vacated("a"), 10.0) is None
    assert book.offer(occupied("a"), 12.5) is None
    assert book.offer(removed("p", "1"), 12.5) is None
    assert book.offer(added("p", "1"), 13.0) is None
    assert book.due(100.0) == []


def test_comeback_after_hold_is_reported() -> None:
    book = HoldBook(3.0, 100)
    book.offer(vacated("a"), 10.0)
    assert book.due(13.0) == [vacated("a")]
    assert book.offer(occupied("a"), 13.1) == occupied("a")


def test_member_hold_is_per_user_and_channel() -> None:
    book = HoldBook(3.0, 100)
    book.offer(removed("p", "1"), 0.0)
    assert book.offer(added("p", "2"), 1.0) == added("p", "2")
    assert book.offer(added("q", "1"), 1.0) == added("q", "1")
    assert book.due(3.0) == [removed("p", "1")]


def test_other_events_pass_and_full_book_passes_through() -> None:
    book = HoldBook(3.0, 1)
    assert book.offer(occupied("a"), 0.0) == occupied("a")
    assert book.offer({"name": "cache_miss", "channel": "c"}, 0.0) is not None
    assert book.offer(vacated("a"), 0.0) is None
    assert book.offer(vacated("b"), 0.0) == vacated("b")  # not debounced, never lost
    assert book.release_all() == [vacated("a")]


def test_hold_applies_before_type_filter() -> None:
    # A URL that only wants occupied is not told twice that the channel is occupied.
    r = route({"channel_occupied"})
    r.offer(occupied("a"), 0.0, 1)
    r.offer(vacated("a"), 1.0, 1)
    r.offer(occupied("a"), 2.0, 1)
    r.poll(10.0, 1)
    assert sent(r) == [occupied("a")]


# ------------------------------------------------------------------ batching

def test_batch_sealed_at_twenty_events() -> None:
    box = Outbox(DEFAULTS)
    for i in range(45):
        assert box.add(occupied(f"c{i}"), 0.0, 1000)
    assert [len(b.events) for b in box.sealed] == [20, 20]
    assert len(box.forming) == 5 and box.pending == 45


def test_batch_sealed_250_ms_after_first_event() -> None:
    box = Outbox(DEFAULTS)
    box.add(occupied("a"), 5.0, 1000)
    box.add(occupied("b"), 5.2, 1000)
    assert box.next_deadline() == 5.25
    box.poll(5.249, 1000)
    assert not box.sealed
    box.poll(5.25, 1234)
    assert len(box.sealed) == 1 and box.next_deadline() is None
    assert json.loads(box.sealed[0].body) == {"time_ms": 1234,
                                              "events": [occupied("a"), occupied("b")]}


def test_flush_seals_and_releases_everything() -> None:
    r = route()
    r.offer(vacated("a"), 0.0, 1)
    r.offer(occupied("b"), 0.0, 1)
    assert r.poll(0.01, 1, flush=True) == 0
    assert len(r.outbox.sealed) == 1
    assert r.outbox.sealed[0].events == [occupied("b"), vacated("a")]


def test_next_wakeup() -> None:
    r = route()
    assert r.next_wakeup() is None
    r.offer(vacated("a"), 0.0, 1)
    assert r.next_wakeup() == 3.0
    r.offer(occupied("b"), 1.0, 1)
    assert r.next_wakeup() == 1.25


# ------------------------------------------------------------------ overflow

def test_overflow_is_counted_not_queued() -> None:
    r = route(max_pending=3)
    dropped = sum(r.offer(occupied(f"c{i}"), 0.0, 1) for i in range(5))
    assert dropped == 2 and r.outbox.pending == 3
    r.offer(vacated("c0"), 0.0, 1)
    assert r.poll(3.0, 1) == 1  # released after its hold into a full outbox


# ------------------------------------------------------------------ body and signature

def test_body_and_signed_headers() -> None:
    body = encode_body(1700000000000, [occupied("a")])
    assert body == b'{"time_ms":1700000000000,"events":[{"name":"channel_occupied","channel":"a"}]}'
    headers = request_headers("key", "secret", body, (("X-Tenant", "t1"),))
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert headers == {"X-Tenant": "t1", "Content-Type": "application/json",
                       "X-Pusher-Key": "key", "X-Pusher-Signature": expected}


# ------------------------------------------------------------------ retries

def test_backoff_doubles_up_to_a_minute() -> None:
    assert [retry_delay(DEFAULTS, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_retry_schedule_lasts_five_minutes() -> None:
    assert retry_schedule(DEFAULTS) == [0, 1, 3, 7, 15, 31, 63, 123, 183, 243]


def test_backoff_and_give_up() -> None:
    r = route()
    r.offer(occupied("a"), 0.0, 1)
    r.poll(0.25, 1)
    assert r.backoff.failed(0.3) == 1.3
    assert r.outbox.expire(1.3) == []
    assert r.backoff.failed(1.3) == 3.3
    r.backoff.failures = 20
    assert r.outbox.expire(300.26)[0].events == [occupied("a")]
    assert r.outbox.pending == 0
    r.backoff.succeeded()
    assert r.backoff.failures == 0


# ------------------------------------------------------------------ configuration

def test_parse_from_json_and_toml_shapes() -> None:
    text = json.dumps([{"url": "https://example.test/hook", "event_types": ["channel_occupied"],
                        "filter": {"channel_name_starts_with": "private-"},
                        "headers": {"X-Tenant": "t1"}}])
    (hook,) = parse_webhooks(text)
    assert hook == Webhook("https://example.test/hook", frozenset({"channel_occupied"}),
                           "private-", (("X-Tenant", "t1"),))
    assert parse_webhooks([]) == ()


@pytest.mark.parametrize(("value", "message"), [
    ("[{", "not valid JSON"),
    ({"url": "x"}, "must be a list"),
    ([{"url": "ftp://h/", "event_types": ["cache_miss"]}], "http:// or https://"),
    ([{"url": "http:///nohost", "event_types": ["cache_miss"]}], "with a host"),
    ([{"url": "http://h/", "event_types": ["channel_created"]}], "unknown event type"),
    ([{"url": "http://h/", "event_types": []}], "non-empty list"),
    ([{"url": "http://h/", "event_types": ["cache_miss"], "headers": {"X-A": 1}}],
     "string value"),
    ([{"url": "http://h/", "event_types": ["cache_miss"],
       "headers": {"X-Pusher-Signature": "x"}}], "cannot be replaced"),
    ([{"url": "http://h/", "event_types": ["cache_miss"], "filter": "private-"}], "filter"),
    ([{"url": "http://h/", "event_types": ["cache_miss"], "evnt": 1}], "unknown key"),
])
def test_parse_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_webhooks(value)


def test_backlog_is_joined_into_full_batches_but_a_tried_batch_is_kept() -> None:
    box = Outbox(DEFAULTS)
    box.add(occupied("head"), 0.0, 1000)
    box.poll(0.25, 1000)
    head = box.sealed[0]
    head.attempts = 1  # in flight / failed once: its body must stay as sent
    sent_body = head.body
    for i in range(30):  # three events per 250 ms window, as behind a dead receiver
        box.add(occupied(f"c{i}"), 0.3 + i * 0.08, 2000 + i)
        box.poll(0.3 + i * 0.08 + 0.25, 2000 + i)
    box.poll(99.0, 9999, flush=True)
    assert head.body == sent_body and len(head.events) == 1
    assert [len(b.events) for b in box.sealed] == [1, 20, 10]
    second = box.sealed[1]
    assert json.loads(second.body)["time_ms"] == second.time_ms == 2000
    assert [e["channel"] for b in box.sealed for e in b.events] == ["head"] + [
        f"c{i}" for i in range(30)]
