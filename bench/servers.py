"""Start the servers under test on loopback, pinned to one core, and stop them again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOKETI_DIR = Path(os.environ.get("SOKETI_DIR", str(Path.home() / ".cache/peers/soketi")))
SOKETI_INSTALLER = Path(os.environ.get(
    "SOKETI_INSTALLER", str(REPO_ROOT.parent / "shared/peers/install-soketi.sh")))
APP_ID, APP_KEY, APP_SECRET = "100001", "bench-key", "bench-secret"
SERVER_NAMES = ("ours", "soketi")
# `base`: our server from another source tree (e.g. `git archive <commit> broadcaster | tar -x`),
# for before/after comparisons in the same run; its summary lines are printed, not compared.
BASE_SOURCE = os.environ.get("BENCH_BASE_SOURCE", "")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A server process under test and how to reach it."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The server's own process id (taskset execs it, so no wrapper is in between)."""
        return self.process.pid

    def target_arguments(self) -> list[str]:
        """The load-script arguments that point at this server."""
        return ["--port", str(self.port), "--app-id", APP_ID, "--key", APP_KEY,
                "--secret", APP_SECRET, "--server-pid", str(self.pid), "--label", self.name]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def ensure_soketi() -> None:
    """Install soketi 1.6.1 with the shared installer unless it already loads."""
    if (SOKETI_DIR / "node_modules/@soketi/soketi/bin/server.js").exists():
        return
    subprocess.run(["bash", str(SOKETI_INSTALLER), str(SOKETI_DIR)], check=True,
                   stdout=subprocess.DEVNULL)


def _command(name: str, port: int) -> tuple[list[str], dict[str, str], Path, str]:
    """argv, extra environment, working directory and readiness path for server `name`."""
    if name in ("ours", "base"):
        argv = [str(REPO_ROOT / ".venv/bin/python"), "-m", "broadcaster", "serve",
                "--host", "127.0.0.1", "--port", str(port)]
        env = {"REVERB_APP_ID": APP_ID, "REVERB_APP_KEY": APP_KEY,
               "REVERB_APP_SECRET": APP_SECRET,
               "BROADCASTER_METRICS_PORT": os.environ.get("BROADCASTER_METRICS_PORT")
               or str(free_port())}
        if name == "base":
            if not BASE_SOURCE:
                raise ValueError("server 'base' needs BENCH_BASE_SOURCE (a source tree)")
            extra = dict(pair.split("=", 1) for pair in
                         os.environ.get("BENCH_BASE_ENV", "").split() if "=" in pair)
            return argv, {**env, **extra}, Path(BASE_SOURCE), "/up"
        return argv, env, REPO_ROOT, "/up"
    if name == "soketi":
        argv = ["node", "node_modules/@soketi/soketi/bin/server.js", "start"]
        env = {"SOKETI_PORT": str(port), "SOKETI_HOST": "127.0.0.1",
               "SOKETI_METRICS_SERVER_PORT": str(free_port()),
               "SOKETI_DEFAULT_APP_ID": APP_ID, "SOKETI_DEFAULT_APP_KEY": APP_KEY,
               "SOKETI_DEFAULT_APP_SECRET": APP_SECRET}
        return argv, env, SOKETI_DIR, "/"
    raise ValueError(f"unknown server {name!r}; known: {', '.join(SERVER_NAMES)}")


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def start_server(name: str, core: int, log_path: Path) -> RunningServer:
    """Start server `name` pinned to CPU `core` on a free loopback port; return once it answers
    its health check. Output goes to `log_path`."""
    if name == "soketi":
        ensure_soketi()
    port = free_port()
    argv, extra_env, cwd, ready_path = _command(name, port)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(["taskset", "-c", str(core), *argv], cwd=cwd,
                                   env={**os.environ, **extra_env}, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = RunningServer(name, port, process)
    try:
        _wait_ready(f"http://127.0.0.1:{port}{ready_path}", process, timeout=30.0)
    except BaseException:
        server.stop()
        raise
    return server
