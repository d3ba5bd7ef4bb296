"""SIGTERM: readiness fails, clients get 4200 and may reconnect elsewhere, webhooks get flushed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import time
from pathlib import Path

import httpx

from broadcaster.protocol.apps import App, AppRegistry
from broadcaster.protocol.webhook_config import Webhook
from broadcaster.server.metrics import MetricsServer
from broadcaster.server.node import BroadcastServer
from tests.support.processes import Broadcaster, free_port
from tests.support.pusher_client import PusherTestClient
from tests.support.webhook_receiver import WebhookReceiver, count


def _raw_websocket(server: Broadcaster) -> socket.socket:
    """A WebSocket opened by hand that will never answer the server's close frame."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /app/{server.key}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    received = b""
    deadline = time.monotonic() + 5
    while b"connection_established" not in received and time.monotonic() < deadline:
        received += sock.recv(4096)
    assert b"101 Switching Protocols" in received and b"connection_established" in received
    return sock


def test_sigterm_fails_readiness_then_closes_clients_with_4200(tmp_path: Path) -> None:
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                         extra_env={"BROADCASTER_SHUTDOWN_GRACE": "4"}).start()
    assert server.process is not None and server.process.proc is not None
    proc = server.process.proc
    sock = _raw_websocket(server)
    try:
        assert httpx.get(f"{server.metrics_url}/ready", timeout=5).status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        statuses = set()
        for _ in range(40):  # the server waits for our (never sent) close answer
            try:
                statuses.add(httpx.get(f"{server.metrics_url}/ready", timeout=1).status_code)
            except httpx.TransportError:
                break
            if 503 in statuses:
                break
            time.sleep(0.05)
        assert 503 in statuses
        received = b""
        while b"\x88" not in received and time.monotonic() - started < 5:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        text = received.decode("latin-1")
        assert '"code":4200' in text.replace(" ", "").replace("\\", "")
        close = received[received.index(b"\x88"):]
        assert struct.unpack("!H", close[2:4])[0] == 4200
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 4 + 1.5  # within the grace period
    finally:
        sock.close()
        server.stop()


async def test_a_client_reconnects_to_another_node(tmp_path: Path) -> None:
    """What a load balancer does: the 4200 client comes back on the node still running."""
    first = Broadcaster(port=free_port(), log_path=tmp_path / "a.log").start()
    second = Broadcaster(port=free_port(), log_path=tmp_path / "b.log").start()
    try:
        async with PusherTestClient(first.ws_url) as client:
            await client.subscribe("moving")
            assert first.process is not None and first.process.proc is not None
            first.process.proc.send_signal(signal.SIGTERM)
            error = await client.expect("pusher:error")
            assert json.loads(error["data"])["code"] == 4200
        async with PusherTestClient(second.ws_url) as again:
            await again.subscribe("moving")
        assert first.process.proc.wait(timeout=10) == 0
    finally:
        first.stop()
        second.stop()


async def test_shutdown_flushes_webhooks_within_the_grace_period() -> None:
    """The held channel_vacated of the clients closed by the shutdown reaches a real receiver,
    and the dispatcher's counters are scraped from the metrics port before and after."""
    receiver = WebhookReceiver().start()
    hooks = (Webhook(receiver.url, frozenset({"channel_occupied", "channel_vacated"})),)
    app = App(id="1", key="k", secret="s", webhooks=hooks)
    server = BroadcastServer(AppRegistry([app]))
    await server.start("127.0.0.1", 0)
    metrics = MetricsServer(server)
    await metrics.start("127.0.0.1", 0)
    try:
        async with PusherTestClient(f"ws://127.0.0.1:{server.port}/app/k?protocol=7") as client:
            await client.subscribe("hooked")
            await receiver.until(lambda events: count(events, "channel_occupied") == 1,
                                 "channel_occupied")
            async with httpx.AsyncClient(timeout=5) as http:
                scraped = (await http.get(f"http://127.0.0.1:{metrics.port}/metrics")).text
            assert "broadcaster_webhooks_delivered_total 1.0" in scraped
            shutdown = asyncio.create_task(server.shutdown(grace=4.0))
            error = await client.expect("pusher:error")
            assert json.loads(error["data"])["code"] == 4200
            started = time.monotonic()
            await asyncio.wait_for(shutdown, 6)
        # channel_vacated is normally held 3 s; the shutdown sends it within the grace period.
        assert count(receiver.accepted_events(), "channel_vacated", "hooked") == 1
        assert time.monotonic() - started < 4.5
        assert server.webhooks is not None
        assert server.webhooks.stats.pending == 0
        assert server.webhooks.stats.delivered == 2
    finally:
        await metrics.close()
        receiver.stop()
