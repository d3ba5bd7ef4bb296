"""A plain RESP2 connection to one Redis node, for the bus's two hot paths.

Connect (TLS when configured), `AUTH` when credentials are configured, then write commands and
handle replies as they arrive: every complete reply in the bytes of one read is parsed at once
(hiredis when installed) and handed to `received` in the transport's own callback, so a message
costs no task wake-up, no timer and no stream buffer. A general-purpose client costs tens of
microseconds per message in timeout contexts and dictionaries; every node sends or receives every
message of the deployment.

Two phases: while opening, `read` collects replies for the caller (AUTH, SUBSCRIBE
confirmations); `serve` then hands every later read to `received`. Time-outs are watched by the
owner's slow loop (`watch`), never per message.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import cast

from broadcaster.hub.resp import Reply, ReplyError, command, make_reader
from broadcaster.scaling import Address, ScalingConfig


class ConnectionLost(ConnectionError):
    """The connection cannot go on (closed, unanswered, an error reply, a slot moved)."""


class WireConnection(asyncio.Protocol):
    """One connection; `connect` first, `close` always (it is idempotent).

    Subclasses implement `received(replies)`, called synchronously for every read once `serve`
    was called; an exception it raises ends the connection (see `watch`).
    """

    def __init__(self, config: ScalingConfig, address: Address) -> None:
        self.config, self.address = config, address
        self.name = f"{address[0]}:{address[1]}"
        self.last_received = 0.0  # time.monotonic() of the last read
        self._transport: asyncio.Transport | None = None
        self._parser = make_reader()
        self._collected: list[Reply] | None = []  # None once serving
        self._error: BaseException | None = None
        self._signal: asyncio.Future[None] | None = None
        self._gone: asyncio.Future[None] | None = None  # done once the socket is closed

    async def connect(self) -> None:
        """Connect and send AUTH if configured (its +OK is the first reply to read)."""
        host, port = self.address
        context = ssl.create_default_context() if self.config.tls else None
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.create_connection(lambda: self, host, port, ssl=context),
                               self.config.timeout)
        if self.config.password is not None:
            credentials = ([self.config.username] if self.config.username else []) + [
                self.config.password]
            self.send(command("AUTH", *credentials))

    @property
    def authenticating(self) -> bool:
        return self.config.password is not None

    def send(self, data: bytes) -> None:
        """Queue bytes for the socket (the transport writes them without blocking)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionLost(self._error or f"{self.name} is not connected")
        transport.write(data)

    async def read(self, within: float) -> list[Reply]:
        """While opening: the replies complete in what arrived within `within` s ([] if none).

        Raises `ConnectionLost` when the server closed the connection or answered an error.
        """
        if not self._collected and self._error is None:
            await self.watch(within)
        if self._error is not None:
            raise self._error
        replies, self._collected = self._collected or [], []
        return replies

    def serve(self) -> None:
        """From now on hand every read to `received` (replies collected so far first)."""
        collected, self._collected = self._collected, None
        if collected:
            self._received(collected)

    async def watch(self, within: float) -> None:
        """Wait at most `within` s, less if something arrives (while opening) or `wake` is
        called; raises the connection's error once it failed."""
        if self._error is None:
            signal = self._signal = asyncio.get_running_loop().create_future()
            await asyncio.wait((signal,), timeout=within)
            self._signal = None
        if self._error is not None:
            raise self._error

    def wake(self) -> None:
        """End the current `watch` early."""
        signal = self._signal
        if signal is not None and not signal.done():
            signal.set_result(None)

    def fail(self, error: BaseException) -> None:
        """End the connection with `error` (the first error is the one reported)."""
        if self._error is None:
            self._error = error
        self.wake()
        if self._transport is not None:
            self._transport.abort()

    def received(self, replies: list[Reply]) -> None:
        raise NotImplementedError

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._gone = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        parser = self._parser
        replies: list[Reply] = []
        error: BaseException | None = None
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                if isinstance(reply, ReplyError):
                    error = ConnectionLost(f"{self.name} answered {reply}")
                    break
                replies.append(reply)
        except Exception as exc:  # a protocol error of the parser: the stream is unusable
            error = ConnectionLost(f"{self.name} sent what is not RESP: {exc}")
        if replies:  # what arrived before a bad reply is still handled
            error = self._received(replies) or error
        if error is not None:
            self.fail(error)

    def _received(self, replies: list[Reply]) -> BaseException | None:
        if self._collected is not None:
            self._collected.extend(replies)
            self.wake()
            return None
        try:
            self.received(replies)
        except Exception as exc:
            return exc
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        self.fail(ConnectionLost(f"{self.name} closed the connection"))

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        gone = self._gone
        if transport is not None:
            transport.close()
            if gone is not None and not gone.done():
                await asyncio.wait((gone,), timeout=1.0)
        if self._error is None:
            self._error = ConnectionLost(f"{self.name} was closed")
        self.wake()
