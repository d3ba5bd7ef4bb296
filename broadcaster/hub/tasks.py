"""Stopping a background task for sure."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("broadcaster.redis")


async def cancel_and_wait(task: asyncio.Task[None], *, tries: int = 100,
                          step: float = 0.1) -> bool:
    """Cancel `task` and wait for it to end, cancelling again every `step` s: on Python 3.11
    `asyncio.wait_for` can swallow a cancellation that arrives just as the operation it awaits
    completes. Returns whether the task ended (logged when it did not)."""
    for _ in range(tries):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=step)
        if done:
            return True
    log.error("background task did not stop", extra={"task": task.get_name()})
    return False
