"""Start real servers (ours and helpers) as subprocesses on free loopback ports, for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, timeout: float = 15.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    """Poll `url` until it answers 2xx; fail early if `proc` exits first."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def stop_process(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM) -> None:
    """Send `sig` (SIGKILL for a crash) and wait for the exit; kill after 10 s if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class ManagedProcess:
    """A subprocess that is started, waited for, and always stopped."""

    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str | None = None
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        env = {**os.environ, **self.env}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            list(self.argv), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        if self.ready_url:
            try:
                wait_for_http(self.ready_url, proc=self.proc)
            except Exception:
                self.stop()
                raise

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""


class ServerProcess:
    """Start, stop and read the log of a server subprocess that answers `GET /up` when ready."""

    process: ManagedProcess | None
    log_path: Path | None

    def _launch(self, argv: Sequence[str], env: Mapping[str, str], base_url: str) -> None:
        self.process = ManagedProcess(argv, env, ready_url=f"{base_url}/up",
                                      log_path=self.log_path)
        self.process.start()

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def log(self) -> str:
        return self.process.log() if self.process else ""


@dataclass
class Broadcaster(ServerProcess):
    """A running broadcaster: `python -m broadcaster serve` on a free loopback port."""

    port: int
    app_id: str = "100001"
    key: str = "app-key"
    secret: str = "app-secret"
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    process: ManagedProcess | None = field(default=None, init=False)
    # Each server gets its own metrics port, so servers started side by side never collide.
    metrics_port: int = field(default_factory=free_port)

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/app/{self.key}?protocol=7&client=py&version=1.0"

    def env(self) -> dict[str, str]:
        return {
            "REVERB_APP_ID": self.app_id,
            "REVERB_APP_KEY": self.key,
            "REVERB_APP_SECRET": self.secret,
            "BROADCASTER_METRICS_PORT": str(self.metrics_port),
            **self.extra_env,
        }

    def start(self) -> Broadcaster:
        argv = [
            sys.executable, "-m", "broadcaster", "serve",
            "--host", self.host, "--port", str(self.port), *self.extra_args,
        ]
        self._launch(argv, self.env(), self.base_url)
        return self


@contextlib.contextmanager
def running_broadcaster(tmp_dir: Path, **kwargs: object) -> Iterator[Broadcaster]:
    """Start a broadcaster for the duration of a `with` block."""
    server = Broadcaster(port=free_port(), log_path=tmp_dir / "broadcaster.log", **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
