"""The bookkeeping of a node's outgoing bus messages: queued, written, acknowledged, back.

A message is queued by `RedisBus.publish`, written by the bus's writer without waiting for the
replies to earlier writes, acknowledged by Redis (`acked`) and finally comes back on the node's
own subscription (`came_back`). Callers of `published` wait for the last step; one `Waiter`
counts the messages of every such caller of one loop turn. Each caller still awaits a future
of its own: a future awaited by several coroutines started eagerly (outside a task, see
`broadcaster.server.eager`) would be handed to their tasks after another task took it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator

Mine = deque[tuple[bytes, "Waiter | None"]]


class Waiter:
    """The callers of `published` in one loop turn: answered when all their messages are back."""

    __slots__ = ("_loop", "deadline", "done", "futures", "remaining")

    def __init__(self, deadline: float) -> None:
        self.deadline, self.remaining, self.done = deadline, 0, False
        self.futures: list[asyncio.Future[bool]] = []
        # Looked up once per turn, not per caller: on Python 3.11 each lookup is a system call.
        self._loop = asyncio.get_running_loop()

    def join(self) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = self._loop.create_future()
        self.futures.append(future)
        return future

    def settle(self, ok: bool) -> None:
        self.done = True
        for future in self.futures:
            if not future.done():
                future.set_result(ok)


class Written:
    """One round of the writer: how many messages, on how many connections still unanswered."""

    __slots__ = ("count", "parts")

    def __init__(self, count: int, parts: int) -> None:
        self.count, self.parts = count, parts


class Outbox:
    """Queued and unanswered messages of one bus (see the module)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.queue: deque[tuple[str, bytes]] = deque()
        self.sending = 0  # written and not yet acknowledged
        self.acknowledged = 0  # since the bus was created
        self._written: deque[Written] = deque()
        # This node's messages on their way, per topic, in publish order, each with the waiter
        # of its `published` caller (None for `publish`).
        self.mine: dict[str, Mine] = {}
        self._waiters: deque[Waiter] = deque()
        self._open: Waiter | None = None  # collects this turn's callers until the writer runs

    @property
    def pending(self) -> int:
        return len(self.queue) + self.sending

    def waiter(self, deadline: float) -> Waiter:
        """The waiter of this loop turn's `published` callers."""
        return Waiter(deadline) if self._open is None else self._open

    def add(self, topic: str, payload: bytes, waiter: Waiter | None) -> None:
        self.queue.append((topic, payload))
        mine = self.mine.get(topic)
        if mine is None:
            mine = self.mine[topic] = deque()
        mine.append((payload, waiter))
        if waiter is not None:
            waiter.remaining += 1
            if self._open is None:
                self._open = waiter
                self._waiters.append(waiter)

    def rounds(self) -> Iterator[list[tuple[str, bytes]]]:
        """Take the queue in rounds of at most `batch` messages; the open waiter closes."""
        self._open = None
        while self.queue:
            count = min(len(self.queue), self.batch)
            yield [self.queue.popleft() for _ in range(count)]

    def written(self, count: int, parts: int) -> Written:
        """A round of `count` messages went out on `parts` connections."""
        token = Written(count, parts)
        self._written.append(token)
        self.sending += count
        return token

    def acked(self, token: object) -> None:
        """One connection accepted its part of a round (rounds may complete out of order
        across nodes; they are counted in order)."""
        assert isinstance(token, Written)
        token.parts -= 1
        written = self._written
        while written and written[0].parts == 0:
            count = written.popleft().count
            self.sending -= count
            self.acknowledged += count

    def came_back(self, mine: Mine) -> None:
        """This node's oldest message on a topic came back from Redis."""
        waiter = mine.popleft()[1]
        if waiter is not None:
            waiter.remaining -= 1
            if waiter.remaining == 0 and waiter is not self._open:
                waiter.settle(True)

    def overdue(self, now: float) -> bool:
        """Whether some caller of `published` waits past its deadline."""
        waiters = self._waiters
        while waiters and waiters[0].done:
            waiters.popleft()
        return bool(waiters) and waiters[0].deadline < now

    def lose_all(self) -> int:
        """The connections are gone: everything queued or unanswered is lost; returns how many
        messages Redis may not have."""
        lost = len(self.queue) + self.sending
        self.queue.clear()
        self.sending = 0
        self._written.clear()
        self.mine.clear()
        self._open = None
        while self._waiters:
            self._waiters.popleft().settle(False)
        return lost
