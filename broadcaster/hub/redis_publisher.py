"""Publishing to one Redis node: a batch of messages in one write, then their replies."""

from __future__ import annotations

import time
from collections.abc import Sequence

from broadcaster.hub.redis_wire import ConnectionLost, WireConnection
from broadcaster.hub.resp import command
from broadcaster.scaling import Address, ScalingConfig


class Publisher(WireConnection):
    """PUBLISH (or SPUBLISH when `sharded`) over one connection, in the order given."""

    def __init__(self, config: ScalingConfig, address: Address, *, sharded: bool) -> None:
        super().__init__(config, address)
        self._verb = "SPUBLISH" if sharded else "PUBLISH"

    async def open(self) -> None:
        """Connect and authenticate within `config.timeout` s."""
        await self.connect()
        if self.authenticating:
            await self._replies(1)

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send `messages` pipelined and wait for Redis to accept all of them, at most
        `config.timeout` s; raises `ConnectionLost` (or `OSError`, `TimeoutError`)."""
        self.send(b"".join(command(self._verb, topic, payload) for topic, payload in messages))
        await self._replies(len(messages))

    async def _replies(self, count: int) -> None:
        deadline = time.monotonic() + self.config.timeout
        while count > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name} did not answer in time")
            count -= len(await self.read(remaining))
        if count < 0:
            raise ConnectionLost(f"{self.name} sent replies nobody asked for")
