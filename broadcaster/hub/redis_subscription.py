"""One pub/sub connection to one Redis node, read in bulk.

A general-purpose client spends tens of microseconds per received message (a timeout context
and a dictionary per message); every node receives every message of the deployment, so this
connection instead reads whatever bytes have arrived and parses all complete messages from them
in one go. Publishing still goes through `redis.asyncio`.

Speaks RESP2: `AUTH` when credentials are configured, then `SUBSCRIBE` (or `SSUBSCRIBE`, one per
topic since they may lie in different slots). No `SELECT`: pub/sub ignores the database number.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence

from broadcaster.hub.resp import Reader, ReplyError, command, make_reader
from broadcaster.scaling import Address, ScalingConfig

_CHUNK = 256 * 1024


class SubscriptionLost(ConnectionError):
    """The subscription cannot go on (closed, unanswered ping, slot moved, error reply)."""


class Subscription:
    """Deliver every message on `topics` at `address` to `on_message(topic, payload)`, in order.

    `open` connects and returns once every topic is confirmed; `run` then reads until the
    connection fails, raising `SubscriptionLost` (or `OSError`); `close` is always safe.
    """

    def __init__(self, config: ScalingConfig, address: Address, topics: Sequence[str], *,
                 sharded: bool, on_message: Callable[[str, bytes], None]) -> None:
        self.config, self.address, self.sharded = config, address, sharded
        self.topics = tuple(topics)
        self._names = {topic.encode(): topic for topic in self.topics}
        self._on_message = on_message
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser: Reader = make_reader()
        self._pending: set[str] = set()
        self._pongs = 0

    async def open(self) -> None:
        """Connect, authenticate and subscribe within `config.timeout` s."""
        host, port = self.address
        context = ssl.create_default_context() if self.config.tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, limit=_CHUNK),
            self.config.timeout)
        self._reader, self._writer = reader, writer
        requests: list[bytes] = []
        if self.config.password is not None:
            credentials = ([self.config.username] if self.config.username else []) + [
                self.config.password]
            requests.append(command("AUTH", *credentials))
        if self.sharded:
            requests += [command("SSUBSCRIBE", topic) for topic in self.topics]
        else:
            requests.append(command("SUBSCRIBE", *self.topics))
        self._pending = set(self.topics)
        writer.write(b"".join(requests))
        deadline = time.monotonic() + self.config.timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no subscribe confirmation from {host}:{port}")
            await self._read_once(remaining)

    async def run(self, ping_after: float) -> None:
        """Read and deliver until the connection fails. A connection quiet for `ping_after` s is
        pinged; no answer within `config.timeout` s more means it is dead."""
        assert self._writer is not None
        while True:
            if await self._read_once(ping_after):
                continue
            pongs = self._pongs
            self._writer.write(command("PING"))
            deadline = time.monotonic() + self.config.timeout
            while self._pongs == pongs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SubscriptionLost(
                        f"{self.address[0]}:{self.address[1]} did not answer a ping")
                await self._read_once(remaining)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = self._reader = None

    async def _read_once(self, within: float) -> bool:
        """Read what arrives within `within` s and handle every complete reply; False if
        nothing arrived."""
        assert self._reader is not None
        try:
            data = await asyncio.wait_for(self._reader.read(_CHUNK), within)
        except TimeoutError:
            return False
        if not data:
            raise SubscriptionLost(f"{self.address[0]}:{self.address[1]} closed the connection")
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            self._handle(reply)
        return True

    def _handle(self, reply: object) -> None:
        if isinstance(reply, ReplyError):
            raise SubscriptionLost(f"{self.address[0]}:{self.address[1]} answered {reply}")
        if isinstance(reply, bytes):  # +OK to AUTH
            return
        if not isinstance(reply, list) or not reply:
            raise SubscriptionLost(f"unexpected reply {reply!r:.80}")
        kind = reply[0]
        if kind in (b"message", b"smessage"):
            channel = reply[1]
            self._on_message(self._names.get(channel) or channel.decode(), reply[2])
        elif kind == b"pong":
            self._pongs += 1
        elif kind in (b"subscribe", b"ssubscribe"):
            self._pending.discard(reply[1].decode())
        elif kind in (b"unsubscribe", b"sunsubscribe"):
            # Unasked for: on a Cluster, the slot of this topic moved to another node.
            raise SubscriptionLost(f"{self.address[0]}:{self.address[1]} unsubscribed "
                                   f"{reply[1].decode()}")
