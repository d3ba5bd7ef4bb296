"""Turns a reply's text deltas into numbered chunks: coalesced, published in order, and saved.

The first delta of a reply is published at once; after that its text waits for the next tick of
a `RelayClock` that all running replies of the process share, and everything that arrived
meanwhile leaves as one chunk. One clock for every reply means one timer instead of one per
reply, and the chunks of all replies reach the publisher together, so they fill shared
`batch_events` requests however many processes split the replies between them.

A reply never has two chunks in flight: one still unanswered holds the text back to a later
tick, so chunks arrive in order. Chunk `seq` starts at 1 and grows by one per chunk; `content`
is always exactly the text of chunks 1..`seq`, which is what gets saved, so a client that reads
the saved message can continue from the chunk after `seq`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from app.services.events import MESSAGE_CHUNK, chunk_event
from app.services.publisher import PusherPublisher

SaveProgress = Callable[[str, int], Coroutine[Any, Any, None]]
logger = logging.getLogger("app.relay")


class RelayClock:
    """Every `interval`, asks each relay with text waiting to publish it (see the module doc).

    Ticks fall on multiples of `interval` of the loop's clock and only while some relay waits:
    an idle process has no timer running.
    """

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._due: dict[ChunkRelay, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None

    def wake(self, relay: ChunkRelay) -> None:
        """Have `relay` publish at the next tick (or a later one, while it has a chunk in
        flight)."""
        self._due[relay] = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="relay-clock")

    def forget(self, relay: ChunkRelay) -> None:
        self._due.pop(relay, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._due:
            now = loop.time()
            await asyncio.sleep(self._interval - now % self._interval)
            due, self._due = self._due, {}
            for relay in due:
                if not relay.publish_pending():
                    self._due[relay] = None

    async def aclose(self) -> None:
        self._due.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ChunkRelay:
    """Coalesces, numbers, publishes and periodically saves the chunks of one message.

    `channel` is asked before every publish: the conversation's channel changes when a member
    leaves, and no chunk may go to the old one after that.
    """

    def __init__(
        self,
        *,
        message_id: int,
        channel: Callable[[], str],
        publisher: PusherPublisher,
        clock: RelayClock,
        save_progress: SaveProgress,
        save_interval_seconds: float,
        max_chunk_chars: int = 4000,
    ) -> None:
        self._message_id = message_id
        self._channel = channel
        self._publisher = publisher
        self._clock = clock
        self._save_progress = save_progress
        self._save_interval = save_interval_seconds
        self._max_chunk = max_chunk_chars
        self._pending: list[str] = []
        self._in_flight: asyncio.Future[bool] | None = None
        self._last_save = time.monotonic()
        self._saved_seq = 0
        self.content = ""
        self.seq = 0
        self._save_task: asyncio.Task[None] | None = None

    def feed(self, delta: str) -> None:
        """Queue a delta from the model; returns at once."""
        if not delta:
            return
        self._pending.append(delta)
        if self.seq == 0 and self._in_flight is None:
            self.publish_pending()  # the first words show without waiting for a tick
        else:
            self._clock.wake(self)

    def publish_pending(self) -> bool:
        """Publish the text waiting as one chunk (at most `max_chunk_chars`; the rest waits);
        False, publishing nothing, while the previous chunk is still in flight."""
        if self._in_flight is not None and not self._in_flight.done():
            return False
        if not self._pending:
            return True
        text = "".join(self._pending)
        piece, rest = text[: self._max_chunk], text[self._max_chunk :]
        self._pending = [rest] if rest else []
        self.seq += 1
        self.content += piece
        self._in_flight = self._publisher.submit(
            self._channel(), MESSAGE_CHUNK, chunk_event(self._message_id, piece, self.seq)
        )
        if rest:
            self._clock.wake(self)
        self._maybe_save()
        return True

    async def close(self) -> tuple[str, int]:
        """Publish what is still queued (without waiting for a tick), stop, and return
        (content, seq) of everything relayed."""
        self._clock.forget(self)
        while True:
            if self._in_flight is not None:
                await self._in_flight
            if not self._pending:
                break
            self.publish_pending()
        if self._save_task is not None:
            await self._save_task
        return self.content, self.seq

    def abandon(self) -> None:
        """Publish nothing more (what is queued is dropped): the reply ended some other way."""
        self._clock.forget(self)
        self._pending.clear()

    def _maybe_save(self) -> None:
        now = time.monotonic()
        saving = self._save_task is not None and not self._save_task.done()
        if now - self._last_save >= self._save_interval and self.seq != self._saved_seq \
                and not saving:
            # Saved beside the stream, not in its way: a slow disk must not delay chunks. One
            # save at a time, each of a later (content, seq), so the stored text only grows.
            self._last_save = now
            self._saved_seq = self.seq
            self._save_task = asyncio.create_task(self._save(self.content, self.seq))

    async def _save(self, content: str, seq: int) -> None:
        try:
            await self._save_progress(content, seq)
        except Exception:
            # The final save at the end of the reply stores everything anyway.
            logger.exception("could not save the progress of message %s", self._message_id)
