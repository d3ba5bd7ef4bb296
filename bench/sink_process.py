"""The compiled receiving side (bench/sink/sink.c): build it, run it, read its live counters.

The sink runs as a child process on the same core as the script that starts it; the script reads
its counters through a small shared file and adds its CPU time to the load generator's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from bench.process_meter import process_cpu_seconds
from bench.target import Target

SOURCE = Path(__file__).resolve().parent / "sink" / "sink.c"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "broadcaster-bench"


class Slot(IntEnum):
    """64-bit counters in the shared file, in the order sink.c lays them out."""

    SUBSCRIBED = 0
    FAILED = 1
    CLOSED = 2
    EVENTS = 3
    EVENT_BYTES = 4
    SETUP_START_NS = 5
    SETUP_END_NS = 6
    LATENCY_COUNT = 7
    CONTROL = 8
    READY = 9


SLOT_COUNT = 10
CONTROL_RECORD, CONTROL_PAUSE, CONTROL_EXIT = 1, 2, 3


def sink_binary() -> Path:
    """Path of the compiled sink, compiling it (cc -O2) when the source changed."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    binary = CACHE / f"sink-{digest}"
    if binary.exists():
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("a C compiler (cc) is needed to build bench/sink/sink.c")
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".tmp")
    subprocess.run([compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE)], check=True)
    partial.replace(binary)
    return binary


@dataclass
class SinkResult:
    """The sink's closing line: latency percentiles in microseconds (-1 when none)."""

    fields: dict[str, str]

    def number(self, key: str) -> float:
        """A numeric field of the closing line."""
        return float(self.fields.get(key, "-1"))


class Sink:
    """A running sink holding `connections` subscriptions to `channel` on `target`."""

    def __init__(self, target: Target, channel: str, connections: int, *,
                 concurrency: int = 200, max_seconds: float = 300.0, channels: int = 0) -> None:
        handle, name = tempfile.mkstemp(prefix="bench-sink-", dir="/dev/shm")
        os.ftruncate(handle, SLOT_COUNT * 8)
        self._stats_path = name
        self._map = mmap.mmap(handle, SLOT_COUNT * 8)
        os.close(handle)
        argv = [str(sink_binary()), "--port", str(target.port), "--key", target.key,
                "--channel", channel, "--connections", str(connections),
                "--concurrency", str(concurrency), "--max-seconds", str(max_seconds),
                "--stats", name, "--channels", str(channels)]
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    @property
    def pid(self) -> int:
        """The sink's process id."""
        return self._process.pid

    def read(self, slot: Slot) -> int:
        """Current value of one counter."""
        return int(struct.unpack_from("<Q", self._map, slot * 8)[0])

    def cpu_seconds(self) -> float:
        """CPU time the sink has used so far."""
        return process_cpu_seconds(self._process.pid)

    def set_control(self, value: int) -> None:
        """Write the control word (record latency / pause / exit)."""
        struct.pack_into("<Q", self._map, Slot.CONTROL * 8, value)

    async def wait_ready(self, limit_s: float) -> bool:
        """Wait until every connection has subscribed or failed; False after `limit_s` seconds
        or if the sink exited."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self._process.poll() is None:
            if self.read(Slot.READY):
                return True
            await asyncio.sleep(0.01)
        return False

    async def subscribed(self, limit_s: float = 90.0) -> tuple[int, list[str]]:
        """Wait for the setup; the number of subscriptions made and what went wrong, if anything
        (as `status` words)."""
        problems: list[str] = []
        if not await self.wait_ready(limit_s):
            problems.append("setup_timeout")
        if self.read(Slot.FAILED):
            problems.append(f"connect_failures_{self.read(Slot.FAILED)}")
        return self.read(Slot.SUBSCRIBED), problems

    def setup_seconds(self) -> float:
        """Time from the first connect to the last subscription (or failure)."""
        return (self.read(Slot.SETUP_END_NS) - self.read(Slot.SETUP_START_NS)) / 1e9

    def stop(self) -> SinkResult:
        """Ask the sink to exit (closing every connection) and return its closing line."""
        self.set_control(CONTROL_EXIT)
        try:
            out, _ = self._process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.send_signal(signal.SIGKILL)
            out, _ = self._process.communicate(timeout=5)
        self._map.close()
        os.unlink(self._stats_path)
        line = out.strip().splitlines()[-1] if out.strip() else "sink"
        fields = dict(pair.split("=", 1) for pair in line.split()[1:] if "=" in pair)
        return SinkResult(fields)
