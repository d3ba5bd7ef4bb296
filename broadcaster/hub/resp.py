"""RESP2, the Redis wire format, for the pub/sub connection: commands out, replies in.

Pure, no I/O. Replies are parsed by `hiredis` when it is installed (C, many replies per call) and
by `PythonReader` otherwise; both are fed bytes and hand out one complete reply per `gets()`, or
False when more bytes are needed. Bulk strings come out as bytes, error replies as `ReplyError`
instances (returned, not raised).
"""

from __future__ import annotations

from typing import Any, Protocol

Reply = Any  # bytes | int | None | list[Reply] | ReplyError


class ReplyError(Exception):
    """An error reply from Redis (`-ERR ...`)."""


class Reader(Protocol):
    def feed(self, data: bytes) -> None: ...

    def gets(self) -> Reply: ...


def command(*parts: str | bytes) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def publish_head(verb: str, topic: str) -> bytes:
    """The bytes of `command(verb, topic, payload)` before the payload's bulk string: the same
    for every message to `topic`, so a publisher builds them once per topic."""
    return b"*3" + command(verb, topic)[2:]


def bulk_prefix(data: bytes) -> bytes:
    """What goes before `data` in a RESP bulk string (`data` is followed by CRLF)."""
    return b"$%d\r\n" % len(data)


class _Incomplete(Exception):
    """Not enough bytes yet for a whole reply."""


class PythonReader:
    """A RESP2 reply parser in Python, for when hiredis is not installed."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:  # drop what was consumed before growing the buffer
            del self._buffer[:self._pos]
            self._pos = 0
        self._buffer += data

    def gets(self) -> Reply:
        try:
            reply, end = self._parse(self._pos)
        except _Incomplete:
            return False
        self._pos = end
        return reply

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[start:end]), end + 2

    def _parse(self, start: int) -> tuple[Reply, int]:
        line, pos = self._line(start)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest, pos
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace")), pos
        if kind == b":":
            return int(rest), pos
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None, pos
            if len(self._buffer) < pos + size + 2:
                raise _Incomplete
            return bytes(self._buffer[pos:pos + size]), pos + size + 2
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None, pos
            items = []
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        raise ValueError(f"not a RESP2 reply: {line[:40]!r}")


def make_reader() -> Reader:
    """hiredis's reader when installed (with our `ReplyError`), else `PythonReader`."""
    try:
        import hiredis
    except ImportError:
        return PythonReader()
    reader: Reader = hiredis.Reader(replyError=ReplyError)
    return reader
