"""The `broadcaster` command: start-up messages, configuration errors, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from tests.support.processes import REPO_ROOT, Broadcaster, free_port, wait_for_http
from tests.support.pusher_client import PusherTestClient


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REVERB_")}
    clean["BROADCASTER_METRICS_PORT"] = "0"  # any free port: never collide with another server
    return subprocess.run([sys.executable, "-m", "broadcaster", *args],
                          check=False, cwd=REPO_ROOT,
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=20)


def test_configuration_mistakes_exit_2_with_a_message(tmp_path: Path) -> None:
    missing = run_cli("serve", env={"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k"})
    assert missing.returncode == 2
    assert "REVERB_APP_SECRET is required" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[apps]\n")
    toml = run_cli("serve", "--config", str(bad))
    assert toml.returncode == 2 and "not valid TOML" in toml.stderr


def test_port_in_use_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port),
                         env={"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k",
                              "REVERB_APP_SECRET": "s"})
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_development_app_is_announced_loudly() -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REVERB_")}
    clean["BROADCASTER_METRICS_PORT"] = "0"
    proc = subprocess.Popen([sys.executable, "-m", "broadcaster", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=REPO_ROOT, env=clean,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/up", proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert "DEVELOPMENT app" in stderr
    assert "app secret: dev-secret-" in stderr
    assert proc.returncode == 0


async def test_sigterm_asks_clients_to_reconnect(tmp_path: Path) -> None:
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log").start()
    try:
        async with PusherTestClient(server.ws_url) as client:
            await client.subscribe("bye")
            assert server.process is not None and server.process.proc is not None
            server.process.proc.send_signal(signal.SIGTERM)
            error = await client.expect("pusher:error")
            assert json.loads(error["data"])["code"] == 4200
            assert client.ws is not None
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(client.ws.recv(), 5)
            assert client.ws.close_code == 4200
        assert server.process.proc.wait(timeout=10) == 0
    finally:
        server.stop()


async def test_debug_logs_frames(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    server = Broadcaster(port=free_port(), log_path=log, extra_args=["--debug"]).start()
    try:
        async with PusherTestClient(server.ws_url) as client:
            await client.subscribe("debug-channel")
    finally:
        server.stop()
    text = log.read_text()
    assert 'msg="frame in"' in text and "debug-channel" in text
    assert 'msg="frame out"' in text
