"""Signed Pusher HTTP API publishing over a small pool of connections.

Each connection is reused while the server keeps it alive and reopened when the server closes it
after a response (soketi 1.6.1 does that every time), so publishing works against both kinds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.target import Target

EVENT_NAME = "bench-event"
EVENT_DATA_BYTES = 200
_MAX_HEADER_BYTES = 16384


def event_data(timestamp_ns: int) -> str:
    """The event's `data`: a JSON string of exactly EVENT_DATA_BYTES carrying a timestamp."""
    head = f'{{"t":{timestamp_ns},"pad":"'
    return head + "x" * (EVENT_DATA_BYTES - len(head) - 2) + '"}'


def signed_events_request(target: Target, channel: str, data: str) -> bytes:
    """A complete HTTP/1.1 request triggering one event, signed as the Pusher SDKs sign it."""
    body = json.dumps({"name": EVENT_NAME, "channels": [channel], "data": data},
                      separators=(",", ":")).encode()
    path = f"/apps/{target.app_id}/events"
    query = (f"auth_key={target.key}&auth_timestamp={int(time.time())}&auth_version=1.0"
             f"&body_md5={hashlib.md5(body).hexdigest()}")
    signature = hmac.new(target.secret.encode(), f"POST\n{path}\n{query}".encode(),
                         hashlib.sha256).hexdigest()
    head = (f"POST {path}?{query}&auth_signature={signature} HTTP/1.1\r\n"
            f"Host: {target.host}:{target.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


@dataclass
class PublishStats:
    """What the publishers did in one run."""

    sent: int = 0
    failed: int = 0
    reconnects: int = 0
    last_error: str = ""


class _Connection:
    """One HTTP/1.1 client connection; reopened whenever the server has closed it."""

    def __init__(self, target: Target, stats: PublishStats) -> None:
        self._target = target
        self._stats = stats
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self._target.host, self._target.port)
        self._stats.reconnects += 1

    async def post(self, build_request: Callable[[], bytes]) -> None:
        """Send the request made by `build_request` (called right before writing) and read the
        whole response; raise on a non-2xx status or a broken connection."""
        if self._writer is None:
            await self._open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(build_request())
        head = await self._reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_HEADER_BYTES:
            raise ConnectionError("response header too large")
        lines = head.decode("latin-1").lower().split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value:
                keep_alive = False
        body = await self._reader.readexactly(length) if length else b""
        if not keep_alive:
            self.close()
        if not 200 <= status < 300:
            raise ConnectionError(f"HTTP {status}: {body[:120]!r}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class PublisherPool:
    """`size` connections publishing events to one channel; at most one request in flight each."""

    def __init__(self, target: Target, channel: str, size: int) -> None:
        self._target = target
        self._channel = channel
        self.stats = PublishStats()
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(_Connection(target, self.stats))

    def idle_connections(self) -> int:
        """How many connections could start a request right now."""
        return self._idle.qsize()

    async def publish(self) -> None:
        """Publish one timestamped event; a failure is counted, never raised."""
        connection = await self._idle.get()
        try:
            await connection.post(lambda: signed_events_request(
                self._target, self._channel, event_data(time.monotonic_ns())))
            self.stats.sent += 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            connection.close()
            self.stats.failed += 1
            self.stats.last_error = repr(exc)[:160]
        finally:
            self._idle.put_nowait(connection)

    def close(self) -> None:
        """Close every idle connection."""
        while not self._idle.empty():
            self._idle.get_nowait().close()
