"""Turns a reply's text deltas into numbered chunks: coalesced, published in order, and saved.

The first delta is published at once; after that at most one publish per `interval` per message,
with everything that arrived meanwhile joined into one chunk. Publishing never holds up the model's
stream: deltas are buffered while a publish is in flight. Chunk `seq` starts at 1 and grows by one
per chunk; `content` is always exactly the text of chunks 1..`seq`, which is what gets saved, so a
client that reads the saved message can continue from the chunk after `seq`.
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
        save_progress: SaveProgress,
        interval_seconds: float,
        save_interval_seconds: float,
        max_chunk_chars: int = 4000,
    ) -> None:
        self._message_id = message_id
        self._channel = channel
        self._publisher = publisher
        self._save_progress = save_progress
        self._interval = interval_seconds
        self._save_interval = save_interval_seconds
        self._max_chunk = max_chunk_chars
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._last_publish = float("-inf")
        self._last_save = time.monotonic()
        self._saved_seq = 0
        self.content = ""
        self.seq = 0
        self._task: asyncio.Task[None] | None = None
        self._save_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"relay-{self._message_id}")

    def feed(self, delta: str) -> None:
        """Queue a delta from the model; returns at once."""
        if delta:
            self._pending.append(delta)
            self._wake.set()

    async def close(self) -> tuple[str, int]:
        """Publish what is still queued, stop, and return (content, seq) of everything relayed."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._save_task is not None:
            await self._save_task
        return self.content, self.seq

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            wait = self._last_publish + self._interval - time.monotonic()
            if wait > 0 and not self._closing:
                await asyncio.sleep(wait)
            await self._publish_pending()
            if self._pending or self._closing:
                self._wake.set()

    async def _publish_pending(self) -> None:
        text = "".join(self._pending)
        self._pending.clear()
        self._last_publish = time.monotonic()
        for start in range(0, len(text), self._max_chunk):
            piece = text[start : start + self._max_chunk]
            self.seq += 1
            self.content += piece
            await self._publisher.trigger(
                [self._channel()], MESSAGE_CHUNK, chunk_event(self._message_id, piece, self.seq)
            )
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
