"""Pusher's webhook rules: which webhook wants which event, the 3 s hold, batching, the body,
the signed headers and the retry schedule. What a webhook is and how it is configured lives in
`broadcaster.protocol.webhook_config`.

Pure: no asyncio, no sockets, no clock reads. Every `now` is a monotonic time in seconds and
every `time_ms` a Unix time in milliseconds, both passed in by the caller.

Per webhook URL the path of an event is: channel prefix filter -> `HoldBook` (the 3 s hold of
`channel_vacated` / `member_removed`) -> event type filter -> `Outbox` (batches of at most
`batch_size` events, sealed at most `batch_delay` after their first event, bounded).
The hold sits before the type filter so that a URL that only wants `channel_occupied` is not
told twice that a channel it already knows to be occupied is occupied.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broadcaster.protocol.signatures import webhook_signature
from broadcaster.protocol.webhook_config import Webhook

WebhookEvent = dict[str, Any]
"""One event in Pusher's shape, e.g. `{"name": "channel_occupied", "channel": "c"}`."""

# A held event -> the event that cancels it when it comes back within the hold.
_CANCELLED_BY = {"channel_vacated": "channel_occupied", "member_removed": "member_added"}
_CANCELS = {cancel: held for held, cancel in _CANCELLED_BY.items()}

@dataclass(frozen=True, slots=True)
class WebhookTimings:
    """Pusher's numbers. Tests may shrink them; production uses the defaults."""

    hold: float = 3.0  # channel_vacated / member_removed wait this long for a comeback
    batch_delay: float = 0.25  # a batch is sent at most this long after its first event
    batch_size: int = 20  # events per POST
    request_timeout: float = 4.0  # a receiver must answer 2xx within this
    retry_first: float = 1.0  # first retry delay; doubles after each further failure
    retry_max: float = 60.0  # the delay between attempts never exceeds this
    retry_budget: float = 300.0  # an event is given up this long after its batch was sealed
    max_pending: int = 10_000  # events queued per webhook URL; more are dropped and counted


# ---------------------------------------------------------------- the hold

def _hold_key(event: Mapping[str, Any]) -> tuple[str, ...] | None:
    name = event.get("name")
    channel = str(event.get("channel", ""))
    if name in ("channel_vacated", "channel_occupied"):
        return ("channel", channel)
    if name in ("member_removed", "member_added"):
        return ("member", channel, str(event.get("user_id", "")))
    return None


class HoldBook:
    """Holds `channel_vacated` and `member_removed` for `hold` seconds.

    If the channel is occupied again (the user is added again) within the hold, both the held
    event and its comeback are dropped: the receiver's picture did not change. Otherwise the
    held event is released when its hold ends. At most `limit` events are held; past that an
    event passes through at once (never lost, only not debounced).
    """

    def __init__(self, hold: float, limit: int) -> None:
        self._hold = hold
        self._limit = limit
        # Insertion order == deadline order, since every hold lasts the same time.
        self._held: dict[tuple[str, ...], tuple[float, WebhookEvent]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def offer(self, event: WebhookEvent, now: float) -> WebhookEvent | None:
        """The event to pass on now, or None when it is held or cancelled a held one."""
        key = _hold_key(event)
        if key is None:
            return event
        name = event.get("name")
        if name in _CANCELS:
            return None if self._held.pop(key, None) is not None else event
        if len(self._held) >= self._limit and key not in self._held:
            return event
        self._held.pop(key, None)  # a repeat restarts the hold and keeps the latest
        self._held[key] = (now + self._hold, event)
        return None

    def due(self, now: float) -> list[WebhookEvent]:
        """Remove and return the held events whose hold has ended, oldest first."""
        released = []
        for key, (deadline, event) in list(self._held.items()):
            if deadline > now:
                break
            del self._held[key]
            released.append(event)
        return released

    def release_all(self) -> list[WebhookEvent]:
        """Everything held, oldest first (at shutdown: the channels really are vacated)."""
        events = [event for _, event in self._held.values()]
        self._held.clear()
        return events

    def next_deadline(self) -> float | None:
        for deadline, _ in self._held.values():
            return deadline
        return None


# ---------------------------------------------------------------- batching

def encode_body(time_ms: int, events: list[WebhookEvent]) -> bytes:
    """The POST body: `{"time_ms": ..., "events": [...]}` as compact UTF-8 JSON."""
    return json.dumps({"time_ms": time_ms, "events": events},
                      separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(app_key: str, app_secret: str, body: bytes,
                    custom: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """Custom headers plus `Content-Type`, `X-Pusher-Key` and `X-Pusher-Signature` (the hex
    HMAC-SHA256 of the exact body with the app secret)."""
    headers = dict(custom)
    headers["Content-Type"] = "application/json"
    headers["X-Pusher-Key"] = app_key
    headers["X-Pusher-Signature"] = webhook_signature(app_secret, body)
    return headers


@dataclass(slots=True)
class Batch:
    """Events sealed into one POST body. Once tried, the body (and its `time_ms`, the sealing
    time) stays the same across retries, so a receiver can recognise a repeat."""

    events: list[WebhookEvent]
    time_ms: int
    sealed_at: float
    attempts: int = 0
    body: bytes = b""

    def __post_init__(self) -> None:
        self.body = encode_body(self.time_ms, self.events)


@dataclass(slots=True)
class Outbox:
    """The events of one webhook URL waiting to be sent: one forming batch, then sealed batches
    in order. Holds at most `timings.max_pending` events; `add` refuses more."""

    timings: WebhookTimings
    forming: list[WebhookEvent] = field(default_factory=list)
    forming_since: float = 0.0
    sealed: deque[Batch] = field(default_factory=deque)
    pending: int = 0  # events in `forming` and `sealed`

    def add(self, event: WebhookEvent, now: float, time_ms: int) -> bool:
        """Queue `event`; False when the outbox is full (the caller counts it as dropped)."""
        if self.pending >= self.timings.max_pending:
            return False
        if not self.forming:
            self.forming_since = now
        self.forming.append(event)
        self.pending += 1
        if len(self.forming) >= self.timings.batch_size:
            self._seal(now, time_ms)
        return True

    def poll(self, now: float, time_ms: int, *, flush: bool = False) -> None:
        """Seal the forming batch when its `batch_delay` has passed (or at once with `flush`)."""
        if self.forming and (flush or now >= self.forming_since + self.timings.batch_delay):
            self._seal(now, time_ms)

    def _seal(self, now: float, time_ms: int) -> None:
        # Behind a failing or slow receiver small batches pile up; join them (never one already
        # tried, whose body must not change) so that the backlog drains in full-size POSTs. The
        # joined batch keeps the older `time_ms` and retry budget.
        last = self.sealed[-1] if self.sealed else None
        if (last is not None and last.attempts == 0
                and len(last.events) + len(self.forming) <= self.timings.batch_size):
            last.events.extend(self.forming)
            last.body = encode_body(last.time_ms, last.events)
        else:
            self.sealed.append(Batch(self.forming, time_ms, now))
        self.forming = []

    def next_deadline(self) -> float | None:
        return self.forming_since + self.timings.batch_delay if self.forming else None

    def head(self) -> Batch | None:
        return self.sealed[0] if self.sealed else None

    def pop_head(self) -> Batch:
        batch = self.sealed.popleft()
        self.pending -= len(batch.events)
        return batch

    def expire(self, next_attempt: float) -> list[Batch]:
        """Remove and return the sealed batches whose retry budget ends before `next_attempt`.

        Batches are sealed in order, so the expired ones are always a prefix of the queue.
        """
        expired = []
        while self.sealed and gives_up(self.timings, self.sealed[0], next_attempt):
            expired.append(self.pop_head())
        return expired


# ---------------------------------------------------------------- retries

def retry_delay(timings: WebhookTimings, failures: int) -> float:
    """Wait after the `failures`-th consecutive failure: 1, 2, 4 ... seconds, at most 60."""
    exponent = min(max(failures - 1, 0), 30)
    return float(min(timings.retry_max, timings.retry_first * 2 ** exponent))


def gives_up(timings: WebhookTimings, batch: Batch, next_attempt: float) -> bool:
    """Whether `batch` is abandoned rather than tried again at `next_attempt`."""
    return next_attempt > batch.sealed_at + timings.retry_budget


def retry_schedule(timings: WebhookTimings) -> list[float]:
    """Offsets (seconds after the first attempt) of every attempt made for a batch whose
    receiver keeps failing; the first is 0.0."""
    offsets = [0.0]
    for failures in range(1, 10_000):  # bounded: the budget ends long before
        nxt = offsets[-1] + retry_delay(timings, failures)
        if nxt > timings.retry_budget:
            break
        offsets.append(nxt)
    return offsets


@dataclass(slots=True)
class Backoff:
    """Consecutive failures of one webhook URL and when it may be tried again."""

    timings: WebhookTimings
    failures: int = 0
    retry_at: float = float("-inf")

    def failed(self, now: float) -> float:
        """Record a failure at `now`; returns the time of the next attempt."""
        self.failures += 1
        self.retry_at = now + retry_delay(self.timings, self.failures)
        return self.retry_at

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = float("-inf")


# ---------------------------------------------------------------- one URL

class WebhookRoute:
    """Everything about one webhook URL of one app except the sending: filter, hold, outbox
    and backoff. `offer` and `poll` return how many events were dropped for lack of room."""

    def __init__(self, webhook: Webhook, timings: WebhookTimings) -> None:
        self.webhook = webhook
        self.timings = timings
        self.holds = HoldBook(timings.hold, timings.max_pending)
        self.outbox = Outbox(timings)
        self.backoff = Backoff(timings)

    def offer(self, event: WebhookEvent, now: float, time_ms: int) -> int:
        if not self.webhook.matches_channel(event):
            return 0
        passed = self.holds.offer(event, now)
        return 0 if passed is None else self._queue(passed, now, time_ms)

    def poll(self, now: float, time_ms: int, *, flush: bool = False) -> int:
        """Release ended holds and seal due batches; with `flush` release and seal everything."""
        released = self.holds.release_all() if flush else self.holds.due(now)
        dropped = sum(self._queue(event, now, time_ms) for event in released)
        self.outbox.poll(now, time_ms, flush=flush)
        return dropped

    def _queue(self, event: WebhookEvent, now: float, time_ms: int) -> int:
        if event.get("name") not in self.webhook.event_types:
            return 0
        return 0 if self.outbox.add(event, now, time_ms) else 1

    def next_wakeup(self) -> float | None:
        """The earliest moment `poll` or a retry has work to do, or None when idle."""
        times = [self.holds.next_deadline(), self.outbox.next_deadline()]
        if self.outbox.sealed:
            times.append(self.backoff.retry_at)
        known = [t for t in times if t is not None]
        return min(known) if known else None
