"""The cross-node envelope and the choice of topic per channel."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcaster.hub.envelope import Envelope, EnvelopeError, Kind, UnknownKind, decode, encode
from broadcaster.hub.topics import SLOTS, Topics


def test_round_trip_and_compact() -> None:
    envelope = Envelope(origin="node-a", app_id="100001", channel="private-chat.é",
                        text='{"event":"x","data":"{}"}', except_socket_id="123.456")
    data = encode(envelope)
    assert decode(data) == envelope
    assert len(data) == 8 + len("node-a100001private-chat.é".encode()) + 7 + len(envelope.text)
    assert data.endswith(envelope.text.encode())


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_round_trips(kind: Kind) -> None:
    envelope = Envelope("node", "1", "presence-c", "{}", None, kind)
    assert decode(encode(envelope)) == envelope


def test_no_exclusion_is_none() -> None:
    assert decode(encode(Envelope("n", "1", "c", "t"))).except_socket_id is None


@given(st.text(max_size=50), st.text(max_size=50), st.text(max_size=50), st.text(),
       st.one_of(st.none(), st.text(min_size=1, max_size=40)))
def test_any_text_round_trips(origin: str, app_id: str, channel: str, text: str,
                              excluded: str | None) -> None:
    envelope = Envelope(origin, app_id, channel, text, excluded, Kind.EVENT)
    assert decode(encode(envelope)) == envelope


@pytest.mark.parametrize("data", [
    b"", b"\x01\x00", b"\x02\x00\x01\x00\x01\x00\x01\x00abc",  # short, short, bad version
    b"\x01\x09\x01\x00\x01\x00\x01\x00abc",  # unknown kind
    b"\x01\x00\x05\x00\x01\x00\x01\x00abc",  # header says more than there is
    b"\x01\x00\x01\x00\x01\x00\x01\x00\xff\xfe\xfd",  # not UTF-8
])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode(data)


def test_a_kind_from_a_newer_version_is_told_apart_from_garbage() -> None:
    data = bytearray(encode(Envelope("n", "1", "c", "t")))
    data[1] = len(Kind)  # the first kind this version does not know
    with pytest.raises(UnknownKind, match=f"kind {len(Kind)}"):
        decode(bytes(data))


def test_oversized_fields_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="origin"):
        encode(Envelope("x" * 256, "1", "c", "t"))


def test_one_topic_unless_partitioned() -> None:
    topics = Topics("reverb")
    assert topics.names == ("reverb:bus",)
    assert topics.for_channel("1", "a") == topics.for_channel("2", "b") == "reverb:bus"


def test_partitions_spread_evenly_over_slots_and_channels() -> None:
    topics = Topics("reverb", 16)
    assert len(set(topics.names)) == 16
    slots = [Topics.slot(name) for name in topics.names]
    assert [slot * 16 // SLOTS for slot in slots] == list(range(16))
    used = {topics.for_channel("app", f"channel-{i}") for i in range(400)}
    assert used == set(topics.names)
    assert topics.for_channel("app", "c") == Topics("reverb", 16).for_channel("app", "c")
    assert Topics("other", 16).names[0].startswith("other:bus:{")
