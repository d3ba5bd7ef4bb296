"""The envelope of a message between nodes: pure encoding, no I/O.

Layout (network byte order), chosen so that the frame text, by far the largest part, is copied
as-is and never parsed or escaped again:

    version u8 | kind u8 | len(origin) u8 | len(app_id) u16 | len(channel) u16
    | len(except_socket_id) u8 | origin | app_id | channel | except_socket_id | text

Every string is UTF-8; `text` runs to the end. An empty `except_socket_id` means "nobody".
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

VERSION = 1
_HEADER = struct.Struct("!BBBHHB")


class EnvelopeError(ValueError):
    """The bytes are not an envelope this version understands."""


class UnknownKind(EnvelopeError):
    """A well-formed envelope of a kind added after this version (sent by a newer node during
    a rolling upgrade): the receiver skips it."""


class Kind(IntEnum):
    """What the receiving hub does with the envelope."""

    EVENT = 0  # deliver `text` to the local subscribers of `channel`
    USER = 1  # deliver `text` to the local signed-in connections of user `channel`
    TERMINATE = 2  # close the local connections of user `channel`; `text`: {"code", "message"}
    WATCH = 3  # tell local watchers of user `channel` that they went `text` (online/offline)
    ELSEWHERE = 4  # as EVENT, on every node but `origin` (no longer sent; older nodes send it)
    RESYNC = 5  # `origin` wrote its share of app `app_id` again: compare presence rosters


class Envelope(NamedTuple):
    """One cross-node message: the frame `text` for `channel` of `app_id`, sent by `origin`.

    Immutable; a named tuple rather than a frozen dataclass because every message a node
    receives builds one, and this is the cheapest immutable record to build."""

    origin: str
    app_id: str
    channel: str
    text: str
    except_socket_id: str | None = None
    kind: Kind = Kind.EVENT


def _limited(name: str, value: str, limit: int) -> bytes:
    data = value.encode()
    if len(data) > limit:
        raise EnvelopeError(f"{name} is longer than {limit} bytes")
    return data


def encode(envelope: Envelope) -> bytes:
    """The bytes of `envelope`; raises `EnvelopeError` if a field does not fit its length."""
    origin = _limited("origin", envelope.origin, 0xFF)
    app_id = _limited("app_id", envelope.app_id, 0xFFFF)
    channel = _limited("channel", envelope.channel, 0xFFFF)
    excluded = _limited("except_socket_id", envelope.except_socket_id or "", 0xFF)
    header = _HEADER.pack(VERSION, envelope.kind, len(origin), len(app_id), len(channel),
                          len(excluded))
    return b"".join((header, origin, app_id, channel, excluded, envelope.text.encode()))


_KINDS = tuple(Kind)  # indexed by value: cheaper than calling `Kind` per message


def decode(data: bytes) -> Envelope:
    """The envelope in `data`; raises `UnknownKind` for a kind this version does not know and
    `EnvelopeError` for anything else that is not an envelope."""
    if len(data) < _HEADER.size:
        raise EnvelopeError("too short for an envelope header")
    version, kind, n_origin, n_app, n_channel, n_except = _HEADER.unpack_from(data)
    if version != VERSION:
        raise EnvelopeError(f"unknown envelope version {version}")
    if kind >= len(_KINDS):
        raise UnknownKind(f"unknown envelope kind {kind}")
    start = _HEADER.size
    app_at = start + n_origin
    channel_at = app_at + n_app
    except_at = channel_at + n_channel
    end = except_at + n_except
    if len(data) < end:
        raise EnvelopeError("envelope shorter than its header says")
    try:
        return Envelope(data[start:app_at].decode(), data[app_at:channel_at].decode(),
                        data[channel_at:except_at].decode(), data[end:].decode(),
                        data[except_at:end].decode() or None, _KINDS[kind])
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"envelope is not UTF-8: {exc}") from None
