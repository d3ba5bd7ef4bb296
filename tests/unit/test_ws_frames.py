"""The server's WebSocket frame reader against frames built by websockets (the client side)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode

from broadcaster.server.ws_frames import (
    BINARY,
    CLOSE,
    FAIL,
    PING,
    PONG,
    TEXT,
    FrameReader,
    close_code,
    close_frame,
    server_frame,
)


def client(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=True, extensions=[])


def raw(first: int, payload: bytes) -> bytes:
    """A masked frame with any first byte (an all-zero mask leaves the payload as is)."""
    assert len(payload) < 65_536
    size = bytes([0x80 | len(payload)]) if len(payload) < 126 else (
        bytes([0x80 | 126]) + len(payload).to_bytes(2, "big"))
    return bytes([first]) + size + bytes(4) + payload


def fail_code(events: list[tuple[int, bytes]]) -> int:
    assert events[-1][0] == FAIL
    return close_code(events[-1][1])


def test_messages_and_control_frames_come_out_in_order() -> None:
    reader = FrameReader(1000)
    wire = (client(Opcode.TEXT, b"hello") + client(Opcode.PING, b"p")
            + client(Opcode.TEXT, b"frag", fin=False) + client(Opcode.PONG, b"")
            + client(Opcode.CONT, b"ment", fin=False) + client(Opcode.CONT, b"ed")
            + client(Opcode.BINARY, b"\x00\x01"))
    assert reader.feed(wire) == [(TEXT, b"hello"), (PING, b"p"), (PONG, b""),
                                 (TEXT, b"fragmented"), (BINARY, b"\x00\x01")]


def test_a_frame_split_at_every_byte_boundary_is_read_once() -> None:
    wire = client(Opcode.TEXT, b"x" * 300) + client(Opcode.TEXT, "é".encode())
    for cut in range(1, len(wire)):
        reader = FrameReader(1000)
        assert reader.feed(wire[:cut]) + reader.feed(wire[cut:]) == [
            (TEXT, b"x" * 300), (TEXT, "é".encode())], cut


def test_close_ends_reading() -> None:
    reader = FrameReader(1000)
    events = reader.feed(client(Opcode.CLOSE, Close(1000, "bye").serialize())
                         + client(Opcode.TEXT, b"late"))
    assert events == [(CLOSE, b"\x03\xe8bye")] and close_code(events[0][1]) == 1000
    assert reader.feed(client(Opcode.TEXT, b"later")) == []


def test_protocol_violations_fail_with_1002() -> None:
    unmasked = Frame(Opcode.TEXT, b"hi").serialize(mask=False, extensions=[])
    cases = [unmasked, client(Opcode.CONT, b"orphan"),
             client(Opcode.TEXT, b"a", fin=False) + client(Opcode.TEXT, b"b"),
             raw(0x89, b"x" * 126), raw(0x09, b"unfinished ping"), raw(0x83, b""),
             raw(0x8B, b""), raw(0xC1, b"rsv1"), raw(0x88, b"\x03"),
             raw(0x88, b"\x03\xed"),  # 1005 may not be sent
             raw(0x88, b"\x03\xe8\xff")]  # the reason is not UTF-8
    for wire in cases:
        assert fail_code(FrameReader(1000).feed(wire)) == 1002, wire


def test_oversized_messages_fail_with_1009_before_the_payload_arrives() -> None:
    reader = FrameReader(100)
    assert fail_code(reader.feed(client(Opcode.TEXT, b"x" * 101)[:8])) == 1009
    fragments = FrameReader(100)
    assert fail_code(fragments.feed(client(Opcode.TEXT, b"x" * 60, fin=False)
                                    + client(Opcode.CONT, b"x" * 60))) == 1009


def test_server_frames_parse_as_websockets_frames() -> None:
    for payload in (b"", b"p" * 125, b"q" * 126, b"r" * 70_000):
        frame = server_frame(PING if len(payload) < 126 else TEXT, payload)
        assert frame.endswith(payload) and frame[0] & 0x80 and not frame[1] & 0x80
    assert close_frame(1009, "too big") == b"\x88\x09\x03\xf1too big"
    assert close_frame(1005) == b"\x88\x00"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    reader = FrameReader(200)
    points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    events = []
    for start, stop in pairwise(points):
        events += reader.feed(data[start:stop])
    assert all(kind in (TEXT, BINARY, PING, PONG, CLOSE, FAIL) for kind, _ in events)
    assert all(kind != FAIL for kind, _ in events[:-1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=150), min_size=1, max_size=6), st.integers(1, 40))
def test_valid_messages_round_trip_at_any_chunking(messages: list[bytes], chunk: int) -> None:
    wire = b"".join(client(Opcode.BINARY, m) for m in messages)
    reader = FrameReader(1000)
    events = []
    for start in range(0, len(wire), chunk):
        events += reader.feed(wire[start:start + chunk])
    assert events == [(BINARY, m) for m in messages]
