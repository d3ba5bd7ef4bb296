"""`broadcaster serve --workers N`: N node processes sharing one port (SO_REUSEPORT).

The parent only supervises: it starts N copies of the same command line, each marked with its
index in `BROADCASTER_WORKER`; the kernel spreads new connections over them. Every worker is a
full node of the cluster (its own RedisHub), which is why more than one worker needs scaling
configured. Worker `i` serves metrics on the configured metrics port + `i`.

SIGTERM or SIGINT to the parent is passed to every worker, which shuts down gracefully (4200 to
its clients); workers still running after the grace period (+ 10 s) are killed. If a worker
exits on its own, the parent stops the others and exits 1, so that whatever supervises the
parent (systemd, a container runtime) restarts the whole set.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("broadcaster")

WORKER_ENV = "BROADCASTER_WORKER"
_POLL = 0.1
_EXTRA_WAIT = 10.0


def worker_index() -> int | None:
    """This process's worker index, or None when it was not started by `run_workers`."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


def run_workers(argv: Sequence[str], count: int, grace: float) -> int:
    """Run `count` workers of `broadcaster <argv>` until they stop; returns the exit status."""
    stopping = False
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(count):
            env = {**os.environ, WORKER_ENV: str(index)}
            children.append(subprocess.Popen(
                [sys.executable, "-m", "broadcaster", *argv, "--workers", "1"], env=env))
        log.info("workers started", extra={"workers": count,
                                           "pids": [child.pid for child in children]})
        status = 0
        while any(child.poll() is None for child in children) and not stopping:
            exited = [child for child in children if child.poll() is not None]
            if exited:
                log.error("a worker exited; stopping the others",
                          extra={"pid": exited[0].pid, "status": exited[0].returncode})
                status = 1
                stop(signal.SIGTERM, None)
                break
            time.sleep(_POLL)
        deadline = time.monotonic() + grace + _EXTRA_WAIT
        while any(child.poll() is None for child in children) and time.monotonic() < deadline:
            time.sleep(_POLL)
        for child in children:
            if child.poll() is None:
                log.error("worker did not stop in time; killing it", extra={"pid": child.pid})
                child.kill()
                child.wait()
        if any(child.returncode not in (0, -signal.SIGTERM) for child in children):
            status = status or 1
        log.info("workers stopped", extra={"status": status})
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
