"""What the app's processes must agree on, behind one small interface.

One process keeps it in memory (`MemoryState`, the default); several processes share it through
Redis (`app.redis_state.RedisState`), so that whichever process a request lands on:

- rate limits (sign-in, registration, posting, typing) count every process's hits;
- a user's concurrent replies are counted across processes;
- a cancel (or a conversation's deletion) reaches the process that streams the reply;
- a conversation's new channel token (after a member left) reaches the process that streams.

Idempotency keys need nothing here: they are rows of the shared database with a unique index.
The number of replies one process streams (503 shedding) stays per process on purpose: it
measures what one process can stream, and a shed post lands on another process when retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from app.ratelimit import SlidingWindowLimiter


class SharedStateUnavailable(Exception):
    """The shared store did not answer; the request is answered 503 with `Retry-After`."""


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window_seconds` for each key, under the name `name`."""

    name: str
    limit: int
    window_seconds: float = 60.0


@dataclass
class Signals:
    """What other processes asked of the replies this one streams (see `SharedState.watch`).

    `stops`: message id -> failure reason (None: end it `cancelled`).
    `tokens`: conversation id -> its current channel token.
    """

    stops: dict[int, str | None] = field(default_factory=dict)
    tokens: dict[int, str] = field(default_factory=dict)


class SharedState(Protocol):
    """The state the app's processes share; every method may raise `SharedStateUnavailable`."""

    @property
    def shared(self) -> bool:
        """True when other processes see this state (then `watch` must be polled)."""
        ...

    async def hit(self, limit: Limit, key: str) -> int | None:
        """Record a hit on `key`; None if allowed, else the whole seconds to wait."""
        ...

    async def hold_reply(self, user_id: int, limit: int) -> str | None:
        """Hold one of the user's `limit` reply slots; its handle, or None when all are held."""
        ...

    async def release_reply(self, user_id: int, hold: str) -> None:
        """Give back the slot `hold_reply` returned."""
        ...

    async def streaming_here(self, message_id: int) -> None:
        """Note that this process streams `message_id` (so stops for it are sent here)."""
        ...

    async def stream_ended(self, message_id: int) -> None:
        """Forget `streaming_here(message_id)`."""
        ...

    async def streaming_anywhere(self, message_ids: Iterable[int]) -> set[int]:
        """Those of `message_ids` that a live process streams now."""
        ...

    async def request_stop(self, message_id: int, reason: str | None) -> bool:
        """Ask the process streaming `message_id` elsewhere to stop it with `reason`.

        False when no live process streams it (it was left over by one that ended).
        """
        ...

    async def retarget(self, conversation_id: int, token: str) -> None:
        """Tell every process the conversation's new channel token."""
        ...

    async def watch(self, message_ids: Iterable[int], conversation_ids: Iterable[int]) -> Signals:
        """The stops requested for these replies and the tokens of these conversations."""
        ...

    async def aclose(self) -> None: ...


class MemoryState:
    """The state of one process: limits in memory, nothing to tell anyone else."""

    shared = False

    def __init__(self) -> None:
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self._holds: dict[int, set[str]] = {}

    async def hit(self, limit: Limit, key: str) -> int | None:
        limiter = self._limiters.get(limit.name)
        if limiter is None:
            limiter = self._limiters[limit.name] = SlidingWindowLimiter(
                limit.limit, limit.window_seconds)
        return limiter.hit(key)

    async def hold_reply(self, user_id: int, limit: int) -> str | None:
        holds = self._holds.setdefault(user_id, set())
        if len(holds) >= limit:
            return None
        hold = uuid.uuid4().hex
        holds.add(hold)
        return hold

    async def release_reply(self, user_id: int, hold: str) -> None:
        holds = self._holds.get(user_id)
        if holds is not None:
            holds.discard(hold)
            if not holds:
                del self._holds[user_id]

    async def streaming_here(self, message_id: int) -> None:
        return None

    async def stream_ended(self, message_id: int) -> None:
        return None

    async def streaming_anywhere(self, message_ids: Iterable[int]) -> set[int]:
        return set()  # asked at start, when this one process streams nothing yet

    async def request_stop(self, message_id: int, reason: str | None) -> bool:
        return False  # every reply of this app streams here, and was looked for here first

    async def retarget(self, conversation_id: int, token: str) -> None:
        return None

    async def watch(self, message_ids: Iterable[int], conversation_ids: Iterable[int]) -> Signals:
        return Signals()

    async def aclose(self) -> None:
        return None
