"""Publishing to one Redis node: batches written back to back, their replies read as they come."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from broadcaster.hub.redis_wire import ConnectionLost, WireConnection
from broadcaster.hub.resp import Reply, bulk_prefix, publish_head
from broadcaster.scaling import Address, ScalingConfig


class _Due:
    """One written batch: replies still due, by when, and what to hand back."""

    __slots__ = ("deadline", "replies", "token")

    def __init__(self, replies: int, deadline: float, token: object) -> None:
        self.replies, self.deadline, self.token = replies, deadline, token


class Publisher(WireConnection):
    """PUBLISH (or SPUBLISH when `sharded`) over one connection, in the order given.

    Batches are pipelined: `publish` writes at once, without waiting for the replies of earlier
    batches; replies are counted as they arrive and `on_acked(token)` is called once every
    message of a batch was accepted, in batch order. `run` returns only by raising: the
    connection failed, or a batch stayed unanswered for `config.timeout` s.
    """

    def __init__(self, config: ScalingConfig, address: Address, *, sharded: bool,
                 on_acked: Callable[[object], None]) -> None:
        super().__init__(config, address)
        self._verb = "SPUBLISH" if sharded else "PUBLISH"
        self._on_acked = on_acked
        self._due: deque[_Due] = deque()
        self._heads: dict[str, bytes] = {}  # topic -> its PUBLISH command up to the payload

    async def open(self) -> None:
        """Connect and authenticate within `config.timeout` s."""
        await self.connect()
        if self.authenticating:
            deadline = time.monotonic() + self.config.timeout
            while not await self.read(max(deadline - time.monotonic(), 0.001)):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} did not answer AUTH in time")

    def publish(self, messages: Sequence[tuple[str, bytes]], token: object) -> None:
        """Write `messages` pipelined; `token` is handed to `on_acked` once all are accepted."""
        heads, parts = self._heads, list[bytes]()
        for topic, payload in messages:
            head = heads.get(topic)
            if head is None:
                head = heads[topic] = publish_head(self._verb, topic)
            parts += (head, bulk_prefix(payload), payload, b"\r\n")
        self.send(b"".join(parts))
        self._due.append(_Due(len(messages), time.monotonic() + self.config.timeout, token))

    def received(self, replies: list[Reply]) -> None:
        """Count the replies against the batches written, oldest first."""
        count, due = len(replies), self._due
        while count:
            if not due:
                raise ConnectionLost(f"{self.name} sent replies nobody asked for")
            head = due[0]
            if head.replies > count:
                head.replies -= count
                return
            due.popleft()
            count -= head.replies
            self._on_acked(head.token)

    async def run(self) -> None:
        """Handle replies until the connection fails; raises `ConnectionLost` or `TimeoutError`
        (checked a few times per `config.timeout`, never per message)."""
        self.serve()
        every = self.config.timeout / 4
        while True:
            await self.watch(every)
            due = self._due
            if due and due[0].deadline < time.monotonic():
                raise TimeoutError(f"{self.name} did not answer in time")
