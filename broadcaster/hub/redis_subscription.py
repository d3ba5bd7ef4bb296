"""One pub/sub connection to one Redis node: every message on its topics, in order.

`SUBSCRIBE` (or `SSUBSCRIBE` on a Cluster, one per topic since topics may lie in different
slots). No `SELECT`: pub/sub ignores the database number, which is why topics carry the prefix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from broadcaster.hub.redis_wire import ConnectionLost, WireConnection
from broadcaster.hub.resp import Reply, command
from broadcaster.scaling import Address, ScalingConfig

SubscriptionLost = ConnectionLost


Messages = list[tuple[str, bytes]]


class Subscription(WireConnection):
    """Deliver every message on `topics` at `address` to `on_messages`, in order: one call per
    read with every `(topic, payload)` that read completed.

    `open` connects and returns once every topic is confirmed; `run` then reads until the
    connection fails, raising `ConnectionLost` (or `OSError`); `close` is always safe.
    """

    def __init__(self, config: ScalingConfig, address: Address, topics: Sequence[str], *,
                 sharded: bool, on_messages: Callable[[Messages], None]) -> None:
        super().__init__(config, address)
        self.sharded = sharded
        self.topics = tuple(topics)
        self._names = {topic.encode(): topic for topic in self.topics}
        self._on_messages = on_messages
        self._pending: set[str] = set()
        self._pongs = 0

    async def open(self) -> None:
        """Connect, authenticate and subscribe within `config.timeout` s."""
        await self.connect()
        if self.sharded:
            self.send(b"".join(command("SSUBSCRIBE", topic) for topic in self.topics))
        else:
            self.send(command("SUBSCRIBE", *self.topics))
        self._pending = set(self.topics)
        deadline = time.monotonic() + self.config.timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no subscribe confirmation from {self.name}")
            self._handle(await self.read(remaining))

    def received(self, replies: list[Reply]) -> None:
        self._handle(replies)

    async def run(self, ping_after: float) -> None:
        """Deliver until the connection fails (raising `ConnectionLost` or `OSError`). A
        connection quiet for `ping_after` s is pinged; no answer within `config.timeout` s more
        means it is dead."""
        self.serve()
        while True:
            await self.watch(ping_after)
            if time.monotonic() - self.last_received < ping_after:
                continue
            pongs = self._pongs
            self.send(command("PING"))
            deadline = time.monotonic() + self.config.timeout
            while self._pongs == pongs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionLost(f"{self.name} did not answer a ping")
                await self.watch(remaining)

    def _handle(self, replies: list[Reply]) -> None:
        messages: Messages = []
        try:
            self._sort(replies, messages)
        finally:  # what arrived before a bad reply is still delivered
            if messages:
                self._on_messages(messages)

    def _sort(self, replies: list[Reply], messages: Messages) -> None:
        for reply in replies:
            if isinstance(reply, bytes):  # +OK to AUTH
                continue
            if not isinstance(reply, list) or not reply:
                raise ConnectionLost(f"unexpected reply from {self.name}: {reply!r:.80}")
            kind = reply[0]
            if kind in (b"message", b"smessage"):
                channel = reply[1]
                messages.append((self._names.get(channel) or channel.decode(), reply[2]))
            elif kind == b"pong":
                self._pongs += 1
                self.wake()
            elif kind in (b"subscribe", b"ssubscribe"):
                self._pending.discard(reply[1].decode())
            elif kind in (b"unsubscribe", b"sunsubscribe"):
                # Unasked for: on a Cluster, the slot of this topic moved to another node.
                raise ConnectionLost(f"{self.name} unsubscribed {reply[1].decode()}")
