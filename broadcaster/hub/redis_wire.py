"""A plain RESP2 connection to one Redis node, for the bus's two hot paths.

Connect (TLS when configured), `AUTH` when credentials are configured, then write commands and
read replies in bulk: every complete reply in the bytes of one read is parsed at once (hiredis
when installed). A general-purpose client costs tens of microseconds per message in timeout
contexts and dictionaries; every node sends or receives every message of the deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from broadcaster.hub.resp import Reader, Reply, ReplyError, command, make_reader
from broadcaster.scaling import Address, ScalingConfig

CHUNK = 256 * 1024


class ConnectionLost(ConnectionError):
    """The connection cannot go on (closed, unanswered, an error reply, a slot moved)."""


class WireConnection:
    """One connection; `open` first, `close` always (it is idempotent)."""

    def __init__(self, config: ScalingConfig, address: Address) -> None:
        self.config, self.address = config, address
        self.name = f"{address[0]}:{address[1]}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser: Reader = make_reader()

    async def connect(self) -> None:
        """Connect and send AUTH if configured (its +OK is the first reply to read)."""
        host, port = self.address
        context = ssl.create_default_context() if self.config.tls else None
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, limit=CHUNK), self.config.timeout)
        if self.config.password is not None:
            credentials = ([self.config.username] if self.config.username else []) + [
                self.config.password]
            self.send(command("AUTH", *credentials))

    @property
    def authenticating(self) -> bool:
        return self.config.password is not None

    def send(self, data: bytes) -> None:
        """Queue bytes for the socket (asyncio writes them without blocking)."""
        if self._writer is None:
            raise ConnectionLost(f"{self.name} is not connected")
        self._writer.write(data)

    async def read(self, within: float) -> list[Reply]:
        """The replies complete in what arrives within `within` s ([] if nothing did).

        Raises `ConnectionLost` when the server closed the connection or answered an error.
        """
        if self._reader is None:
            raise ConnectionLost(f"{self.name} is not connected")
        try:
            data = await asyncio.wait_for(self._reader.read(CHUNK), within)
        except TimeoutError:
            return []
        if not data:
            raise ConnectionLost(f"{self.name} closed the connection")
        self._parser.feed(data)
        replies = []
        while (reply := self._parser.gets()) is not False:
            if isinstance(reply, ReplyError):
                raise ConnectionLost(f"{self.name} answered {reply}")
            replies.append(reply)
        return replies

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
