"""Webhook delivery: the hub observer records events, one task per webhook URL posts them.

`WebhookDispatcher.record` is the hub's observer: synchronous, a few dict operations per
configured URL of the app, never waits. Each (app, URL) pair has its own `WebhookRoute` (the pure
rules in `broadcaster.protocol.webhooks`) and its own task, which posts that URL's batches one
at a time and in order, so a slow or dead receiver only delays its own events. Failed POSTs
(non-2xx, connection errors, no answer within 4 s) are retried with exponential backoff; an event
is given up 5 minutes after its batch was sealed, counted as failed and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from broadcaster.protocol.apps import App
from broadcaster.protocol.webhook_config import Webhook
from broadcaster.protocol.webhooks import (
    Batch,
    WebhookEvent,
    WebhookRoute,
    WebhookTimings,
    request_headers,
)

log = logging.getLogger("broadcaster.webhooks")

# Overflow is logged at most this often per URL (with the running total), not once per event.
_DROP_LOG_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """Counters since start. Events, except `retried`, which counts repeated POSTs."""

    delivered: int  # events in batches a receiver answered with 2xx
    retried: int  # POSTs that repeated a failed one
    failed: int  # events given up: retry budget spent, or not sent by the end of shutdown
    dropped: int  # events refused because their URL already had `max_pending` queued
    pending: int  # events held, batching or waiting to be sent right now


def _time_ms() -> int:
    return int(time.time() * 1000)


class _Sender:
    """One webhook URL of one app: its rules state, its wake-up signal and its task."""

    def __init__(self, app: App, webhook: Webhook, timings: WebhookTimings) -> None:
        self.app = app
        self.webhook = webhook
        self.route = WebhookRoute(webhook, timings)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.drop_logged_at = float("-inf")

    @property
    def log_fields(self) -> dict[str, object]:
        return {"app_id": self.app.id, "url": self.webhook.url}

    def shape(self) -> tuple[bool, int, bool]:
        """What decides the sender's next deadline: a batch forming, how many are sealed, any
        hold. An event that changes none of these (filtered, or joining a forming batch) does
        not need to wake the sender."""
        outbox = self.route.outbox
        return bool(outbox.forming), len(outbox.sealed), bool(len(self.route.holds))

    def idle(self) -> bool:
        outbox = self.route.outbox
        return not outbox.sealed and not outbox.forming and not len(self.route.holds)


class WebhookDispatcher:
    """Delivers the webhooks of every app that configures some.

    Use: `dispatcher = WebhookDispatcher(apps)`, `dispatcher.start()` inside the running loop,
    `hub.observer = dispatcher.record`, and at shutdown `await dispatcher.close(grace)`.
    `stats` can be read at any time. `client` may be given (tests); it is closed by `close`.
    """

    def __init__(self, apps: Iterable[App], *, timings: WebhookTimings | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self.timings = timings or WebhookTimings()
        self._senders: dict[str, list[_Sender]] = {}
        for app in apps:
            if app.webhooks:
                self._senders[app.id] = [_Sender(app, hook, self.timings) for hook in app.webhooks]
        count = sum(len(senders) for senders in self._senders.values())
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(self.timings.request_timeout),
            # One request in flight per URL at most, so the pool never makes a URL wait.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max(count, 1)),
            follow_redirects=False,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._closed = False
        self._delivered = 0
        self._retried = 0
        self._failed = 0

    def _all(self) -> list[_Sender]:
        return [sender for senders in self._senders.values() for sender in senders]

    def start(self) -> None:
        """Start one task per webhook URL; call from inside the running event loop."""
        self._loop = asyncio.get_running_loop()
        for sender in self._all():
            sender.task = self._loop.create_task(self._run(sender),
                                                 name=f"webhooks {sender.webhook.url}")

    @property
    def stats(self) -> WebhookStats:
        senders = self._all()
        return WebhookStats(
            delivered=self._delivered, retried=self._retried, failed=self._failed,
            dropped=sum(s.dropped for s in senders),
            pending=sum(s.route.outbox.pending + len(s.route.holds) for s in senders),
        )

    def record(self, app: App, event: WebhookEvent) -> None:
        """The hub observer: route `event` to the app's webhooks. Never blocks, never raises."""
        senders = self._senders.get(app.id)
        if not senders or self._loop is None:
            return
        now = self._loop.time()
        stamp = _time_ms()
        for sender in senders:
            if self._closed:
                self._note_dropped(sender, 1, now)
                continue
            before = sender.shape()
            try:
                dropped = sender.route.offer(event, now, stamp)
            except Exception:  # the hub must never see an observer fail
                log.exception("webhook event refused", extra={**sender.log_fields,
                                                              "event": event})
                dropped = 1
            if dropped:
                self._note_dropped(sender, dropped, now)
            if sender.shape() != before:  # else the sender's current deadline still holds
                sender.wake.set()

    def _note_dropped(self, sender: _Sender, count: int, now: float) -> None:
        sender.dropped += count
        if now - sender.drop_logged_at >= _DROP_LOG_INTERVAL:
            sender.drop_logged_at = now
            log.warning("webhook queue full, events dropped",
                        extra={**sender.log_fields, "dropped_total": sender.dropped,
                               "max_pending": self.timings.max_pending})

    async def _run(self, sender: _Sender) -> None:
        """Post `sender`'s batches until `close`: wait for the next deadline or a new event."""
        assert self._loop is not None
        loop = self._loop
        route = sender.route
        while not (self._closing and sender.idle()):
            try:
                now = loop.time()
                dropped = route.poll(now, _time_ms(), flush=self._closing)
                if dropped:
                    self._note_dropped(sender, dropped, now)
                batch = route.outbox.head()
                if batch is not None and now >= route.backoff.retry_at:
                    await self._attempt(sender, batch)
                    continue
                wakeup = route.next_wakeup()
                sender.wake.clear()
                # Closing with nothing sendable yet: only a retry time is left to wait for.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(wakeup):
                        await sender.wake.wait()
            except Exception:
                # A bug here must not end the URL's deliveries for good, nor spin.
                log.exception("webhook sender failed", extra=sender.log_fields)
                await asyncio.sleep(1.0)

    async def _attempt(self, sender: _Sender, batch: Batch) -> None:
        assert self._loop is not None
        if batch.attempts:
            self._retried += 1
        batch.attempts += 1
        headers = request_headers(sender.app.key, sender.app.secret, batch.body,
                                  sender.webhook.headers)
        problem = await self._post(sender.webhook.url, batch.body, headers)
        route = sender.route
        if problem is None:
            route.outbox.pop_head()
            if route.backoff.failures:
                log.info("webhook receiver answering again",
                         extra={**sender.log_fields, "failed_attempts": route.backoff.failures})
            route.backoff.succeeded()
            self._delivered += len(batch.events)
            return
        next_attempt = route.backoff.failed(self._loop.time())
        # Quiet by default: the first failure of a streak is a warning, the repeats are debug.
        level = logging.WARNING if route.backoff.failures == 1 else logging.DEBUG
        log.log(level, "webhook post failed, will retry",
                extra={**sender.log_fields, "problem": problem, "attempt": batch.attempts,
                       "retry_in": round(next_attempt - self._loop.time(), 3)})
        for expired in route.outbox.expire(next_attempt):
            self._failed += len(expired.events)
            log.warning("webhook given up after retries",
                        extra={**sender.log_fields, "events": len(expired.events),
                               "attempts": expired.attempts, "problem": problem})

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """POST once; None on 2xx, else what went wrong."""
        try:
            async with asyncio.timeout(self.timings.request_timeout):
                response = await self._client.post(url, content=body, headers=headers)
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # connection refused, reset, bad URL...: all retried alike
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"status {response.status_code}"

    async def close(self, grace: float) -> None:
        """Release every hold, send what can be sent within `grace` seconds (retrying as usual),
        then stop. What is still unsent is counted as failed and logged."""
        if self._closed:
            return
        self._closing = True
        senders = self._all()
        tasks = [s.task for s in senders if s.task is not None]
        for sender in senders:
            sender.wake.set()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=max(grace, 0.0))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._closed = True
        for sender in senders:
            route = sender.route
            left = route.outbox.pending + len(route.holds)
            route.poll(float("inf"), _time_ms(), flush=True)
            while route.outbox.head() is not None:
                route.outbox.pop_head()
            if left:
                self._failed += left
                log.warning("webhooks not delivered before shutdown",
                            extra={**sender.log_fields, "events": left})
        await self._client.aclose()
