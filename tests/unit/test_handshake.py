"""The WebSocket opening handshake, from parsed headers."""

import pytest

from broadcaster.protocol.handshake import HandshakeRefused, accept_upgrade

GOOD = [
    (b"host", b"x"),
    (b"upgrade", b"websocket"),
    (b"connection", b"keep-alive, Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]


def test_rfc_6455_example_key() -> None:
    response = accept_upgrade(GOOD)
    assert isinstance(response, bytes)
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    # The accept value from RFC 6455 section 1.3 for this key.
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert response.endswith(b"\r\n\r\n")
    assert b"Sec-WebSocket-Extensions" not in response  # never permessage-deflate


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in GOOD if n != name]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (without(b"upgrade"), 426),
        ([*without(b"upgrade"), (b"upgrade", b"h2c")], 426),
        (without(b"connection"), 400),
        (without(b"sec-websocket-version"), 426),
        ([*without(b"sec-websocket-version"), (b"sec-websocket-version", b"8")], 426),
        (without(b"sec-websocket-key"), 400),
        ([*without(b"sec-websocket-key"), (b"sec-websocket-key", b"short")], 400),
        ([*without(b"sec-websocket-key"), (b"sec-websocket-key", b"!!notbase64!!!!!!!!!==")], 400),
        ([*GOOD, (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")], 400),
    ],
)
def test_invalid_upgrades_are_refused(headers: list[tuple[bytes, bytes]], status: int) -> None:
    refused = accept_upgrade(headers)
    assert isinstance(refused, HandshakeRefused)
    assert refused.status == status
    assert refused.message
