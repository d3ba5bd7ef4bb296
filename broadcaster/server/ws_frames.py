"""WebSocket framing on the server side (RFC 6455 section 5), without I/O.

`FrameReader` turns the bytes a client sends into whole messages and control frames; the
functions below build the frames a server sends. One reader per connection, a few slots and no
buffer while idle: it replaced websockets' `ServerProtocol` (about 1.4 KB and a generator per
connection), which did the same for us plus the opening handshake and client role we do not use.

Contract of `FrameReader.feed`: it returns, in order, `(opcode, payload)` for each complete
message (TEXT or BINARY, fragments joined), PING, PONG and CLOSE frame; client frames must be
masked, control frames short and unfragmented, messages at most `max_size` bytes. A violation
yields one `(FAIL, close_payload)` (status code 1002 or 1009 and a reason) after which the reader
ignores all further input, as it does after a CLOSE. UTF-8 of text messages is the caller's to
check (it decodes them anyway).
"""

from __future__ import annotations

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
FAIL = -1
PROTOCOL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG = 1002, 1007, 1009
NO_STATUS = 1005
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                1013, 1014})

Event = tuple[int, bytes]


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame: status code and UTF-8 reason (at most 123 bytes)."""
    return code.to_bytes(2, "big") + reason.encode()[:123]


def server_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked, final server frame."""
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65_536:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big") + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code (1005, "no status", is sent as an empty close)."""
    return server_frame(CLOSE, b"" if code == NO_STATUS else close_payload(code, reason))


class FrameReader:
    """Reassembles client frames into messages; see the module docstring for the contract."""

    __slots__ = ("_buffer", "_fragments", "_message_opcode", "_message_size", "done",
                 "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = b""
        self._fragments: list[bytes] | None = None
        self._message_opcode = 0
        self._message_size = 0
        self.done = False  # a CLOSE or a failure was returned: input is ignored from now on

    def feed(self, data: bytes) -> list[Event]:
        """Consume `data`; the complete events it finished, in order."""
        if self.done:
            return []
        buf = self._buffer + data if self._buffer else data
        events: list[Event] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            opcode = first & 0x0F
            if first & 0x70:
                return self._fail(events, PROTOCOL_ERROR, "reserved bits must be 0")
            if not second & 0x80:
                return self._fail(events, PROTOCOL_ERROR, "client frames must be masked")
            length, head = second & 0x7F, 2
            if length == 126:
                if end - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            fin = first & 0x80
            if opcode >= CLOSE:
                if opcode > PONG:
                    return self._fail(events, PROTOCOL_ERROR, f"invalid opcode {opcode}")
                if not fin or length > 125:
                    return self._fail(events, PROTOCOL_ERROR, "invalid control frame")
            elif opcode > BINARY:
                return self._fail(events, PROTOCOL_ERROR, f"invalid opcode {opcode}")
            elif self._message_size + length > self.max_size:
                return self._fail(events, MESSAGE_TOO_BIG,
                                  f"message over {self.max_size} bytes")
            start = pos + head + 4
            if end - start < length:
                break
            payload = apply_mask(buf[start:start + length], buf[pos + head:start])
            pos = start + length
            problem = self._frame(events, opcode, bool(fin), payload)
            if problem is not None:
                return self._fail(events, PROTOCOL_ERROR, problem)
            if self.done:
                return events
        self._buffer = buf[pos:] if pos < end else b""
        return events

    def _frame(self, events: list[Event], opcode: int, fin: bool, payload: bytes) -> str | None:
        """Handle one unmasked frame; a protocol problem as text, else None."""
        if opcode >= CLOSE:
            if opcode == CLOSE:
                problem = _close_problem(payload)
                if problem is not None:
                    return problem
                self.done = True
            events.append((opcode, payload))
            return None
        if opcode == CONT:
            if self._fragments is None:
                return "unexpected continuation frame"
            self._fragments.append(payload)
            self._message_size += len(payload)
            if fin:
                events.append((self._message_opcode, b"".join(self._fragments)))
                self._fragments, self._message_size = None, 0
            return None
        if self._fragments is not None:
            return "expected a continuation frame"
        if fin:
            events.append((opcode, payload))
        else:
            self._fragments, self._message_opcode = [payload], opcode
            self._message_size = len(payload)
        return None

    def _fail(self, events: list[Event], code: int, reason: str) -> list[Event]:
        self.done = True
        self._buffer, self._fragments = b"", None
        events.append((FAIL, close_payload(code, reason)))
        return events


def _close_problem(payload: bytes) -> str | None:
    if not payload:
        return None
    if len(payload) == 1:
        return "close frame too short"
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CLOSE_CODES and not 3000 <= code < 5000:
        return f"invalid close code {code}"
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        return "close reason must be UTF-8"
    return None


def close_code(payload: bytes) -> int:
    """The status code of a received close frame's payload (1005 when it has none)."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NO_STATUS
