"""RESP2 encoding and the two reply parsers (hiredis and the Python fallback) agree."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcaster.hub.resp import PythonReader, Reader, ReplyError, command, make_reader

WIRE = (b"*3\r\n$7\r\nmessage\r\n$5\r\nt:bus\r\n$3\r\n\x00\xffz\r\n"
        b"+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n*-1\r\n"
        b"*2\r\n*1\r\n:1\r\n$2\r\nab\r\n")
EXPECTED = [[b"message", b"t:bus", b"\x00\xffz"], b"OK", ReplyError("ERR wrong"), 42, None,
            [b"pong", b""], None, [[1], b"ab"]]


def replies(reader: Reader) -> list[object]:
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out


def comparable(values: list[object]) -> list[object]:
    return [repr(v) if isinstance(v, ReplyError) else v for v in values]


def test_command_is_a_resp_array_of_bulk_strings() -> None:
    assert command("PUBLISH", "t", b"\r\n") == b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$2\r\n\r\n\r\n"


@pytest.mark.parametrize("reader", [PythonReader, make_reader], ids=["python", "default"])
def test_all_reply_kinds(reader: type[Reader]) -> None:
    parser = reader()
    parser.feed(WIRE)
    assert comparable(replies(parser)) == comparable(EXPECTED)


@given(st.lists(st.integers(min_value=1, max_value=len(WIRE) - 1), max_size=12))
def test_fed_in_any_pieces_the_python_reader_gives_the_same(cuts: list[int]) -> None:
    parser, got = PythonReader(), []
    edges = [0, *sorted(set(cuts)), len(WIRE)]
    for start, end in itertools.pairwise(edges):
        parser.feed(WIRE[start:end])
        got += replies(parser)
    assert comparable(got) == comparable(EXPECTED)


def test_garbage_is_refused() -> None:
    parser = PythonReader()
    parser.feed(b"?what\r\n")
    with pytest.raises(ValueError, match="RESP2"):
        parser.gets()
