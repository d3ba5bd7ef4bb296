"""Saving the text of streaming replies so far: the latest of each, all in one transaction.

With many replies running, one UPDATE transaction per reply per second is many commits (each a
thread hop and, on SQLite, a sync); instead every reply's newest (content, seq) is noted here and
the whole set is written with one `executemany` per interval. Replies that already ended are left
alone (the final save wins), so the stored text only ever grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from app.db import Database
from app.services import message_store

logger = logging.getLogger("app.progress")


class ProgressSaver:
    """Collects the newest progress of each streaming reply and saves it every `interval`."""

    def __init__(self, db: Database, interval_seconds: float) -> None:
        self._db = db
        self._interval = interval_seconds
        self._pending: dict[int, tuple[str, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_save = float("-inf")

    async def note(self, message_id: int, content: str, seq: int) -> None:
        """Remember the reply's text of chunks 1..`seq`; saved with the next batch."""
        self._pending[message_id] = (content, seq)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="progress-saver")

    async def _run(self) -> None:
        # Ends when nothing is pending; `note` starts it again. At most one save per interval,
        # and none waits longer than that: a quiet saver writes at once.
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._last_save + self._interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_save = loop.time()
            batch, self._pending = self._pending, {}
            try:
                await self._db.run(partial(message_store.save_progress_many, progress=batch))
            except Exception:
                # The final save at the end of each reply stores everything anyway.
                logger.exception("could not save the progress of %d replies", len(batch))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
