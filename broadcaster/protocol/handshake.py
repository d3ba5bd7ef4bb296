"""The server side of the WebSocket opening handshake (RFC 6455 section 4.2), from parsed headers.

The HTTP request is already parsed (by httptools) when an upgrade arrives, so the handshake is
checked here rather than by parsing the request a second time; the accept key comes from
`websockets`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from websockets.utils import accept_key


@dataclass(frozen=True, slots=True)
class HandshakeRefused:
    """The request is not a valid WebSocket upgrade; answer with this status and message."""

    status: int
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def accept_upgrade(headers: Iterable[tuple[bytes, bytes]]) -> bytes | HandshakeRefused:
    """The `101 Switching Protocols` response for a valid upgrade request, else the refusal.

    `headers` are (lower-case name, value) pairs as the HTTP connection collects them. No
    extension (so no permessage-deflate) and no subprotocol is negotiated: frames stay
    identical for every subscriber.
    """
    upgrade: set[bytes] = set()
    connection: set[bytes] = set()
    version = key = None
    for name, value in headers:
        if name == b"upgrade":
            upgrade |= _tokens(value)
        elif name == b"connection":
            connection |= _tokens(value)
        elif name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"sec-websocket-key":
            if key is not None:
                return HandshakeRefused(400, "More than one Sec-WebSocket-Key header")
            key = value.strip()
    if b"websocket" not in upgrade:
        return HandshakeRefused(426, "Upgrade: websocket is required",
                                ((b"upgrade", b"websocket"),))
    if b"upgrade" not in connection:
        return HandshakeRefused(400, "Connection: Upgrade is required")
    if version != b"13":
        return HandshakeRefused(426, "Only WebSocket version 13 is supported",
                                ((b"sec-websocket-version", b"13"),))
    if key is None or not _valid_key(key):
        return HandshakeRefused(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key.decode("ascii")).encode() + b"\r\n\r\n"
    )


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False
