"""A client that stops reading must neither delay the others nor grow the server's memory."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

from tests.support.api_client import ApiClient
from tests.support.processes import running_broadcaster
from tests.support.pusher_client import PusherTestClient

HANDSHAKE = (
    "GET /app/{key}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
    "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SUBSCRIBE = b'{"event":"pusher:subscribe","data":{"channel":"firehose"}}'


def stalled_subscriber(host: str, port: int, key: str) -> socket.socket:
    """Subscribe over a raw socket with a tiny receive buffer, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(HANDSHAKE.format(key=key).encode())
    sock.sendall(bytes([0x81, 0x80 | len(SUBSCRIBE)]) + b"\0\0\0\0" + SUBSCRIBE)
    received = b""
    deadline = time.monotonic() + 5
    while b"subscription_succeeded" not in received and time.monotonic() < deadline:
        received += sock.recv(4096)
    assert b"subscription_succeeded" in received
    return sock


async def test_stalled_client_is_dropped_and_others_get_everything(tmp_path: Path) -> None:
    env = {"REVERB_MAX_WRITE_BUFFER": "262144"}
    with running_broadcaster(tmp_path, extra_env=env) as server:
        api = ApiClient(server.base_url, server.app_id, server.key, server.secret)
        stalled = stalled_subscriber(server.host, server.port, server.key)
        async with PusherTestClient(server.ws_url) as healthy:
            await healthy.subscribe("firehose")
            payload = "x" * 9_000
            count = 600  # about 5.4 MB: far more than the stalled socket's buffers hold

            def publish_all() -> list[int]:
                return [api.trigger("firehose", "blob", f'{{"n":{n},"p":"{payload}"}}').status_code
                        for n in range(count)]

            started = time.monotonic()
            publishing = asyncio.create_task(asyncio.to_thread(publish_all))
            numbers = [json.loads((await healthy.expect("blob", timeout=30))["data"])["n"]
                       for _ in range(count)]
            elapsed = time.monotonic() - started
            assert await publishing == [200] * count
        assert numbers == list(range(count))  # all of them, in order
        assert elapsed < 60
        # The server gave up on the stalled client: its socket is reset or closed.
        stalled.settimeout(5)
        dropped = False
        try:
            while True:
                chunk = stalled.recv(1 << 20)
                if not chunk:
                    dropped = True
                    break
        except (ConnectionResetError, TimeoutError):
            dropped = True
        stalled.close()
        api.close()
        assert dropped
        log = server.process.log() if server.process else ""
        assert "slow client dropped" in log
