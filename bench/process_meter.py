"""CPU time and memory of this process and of the server under test, read from the kernel."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU seconds this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def tree_pids(pid: int) -> set[int]:
    """`pid` and every process descending from it (e.g. uvicorn workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue  # ended meanwhile
    tree, frontier = {pid}, [pid]
    while frontier:  # bounded: each process joins the tree once
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and of every process descending from it (e.g. uvicorn workers)."""
    total = 0.0
    for member in tree_pids(pid):
        try:
            total += process_cpu_seconds(member)
        except OSError:
            continue
    return total


def pin(pids: set[int], cpus: set[int]) -> None:
    """Run each of `pids` (and its threads) on `cpus` only; processes gone meanwhile are left."""
    for pid in pids:
        try:
            for thread in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(thread), cpus)
        except OSError:
            continue


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit towards `wanted` (root may raise the hard limit too);
    return the soft limit now in force. Child processes inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def core_busy_seconds(core: int) -> float:
    """Seconds core `core` has spent doing anything but idling (all processes, kernel too)."""
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                ticks = [int(value) for value in line.split()[1:]]
                idle = ticks[3] + ticks[4]  # idle + iowait
                return (sum(ticks[:8]) - idle) / _TICKS_PER_SECOND
    raise RuntimeError(f"no line for cpu{core} in /proc/stat")


@dataclass
class CpuWindow:
    """CPU use of this process and (optionally) the server over one measured interval, as a
    percentage of one core; also how busy each core was, to show interference by other work."""

    server_pid: int | None
    _wall: float = 0.0
    _own: float = 0.0
    _server: float = 0.0
    _cores: tuple[float, ...] = ()
    core_busy: tuple[float, ...] = ()  # per core, % over the last interval, set by stop()

    def start(self) -> None:
        """Take the opening readings."""
        self._wall = time.monotonic()
        self._own = own_cpu_seconds()
        self._server = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self._cores = tuple(core_busy_seconds(core) for core in range(os.cpu_count() or 1))

    def stop(self) -> tuple[float, float, float]:
        """Return (elapsed seconds, own CPU %, server CPU % or -1 when unknown)."""
        elapsed = max(time.monotonic() - self._wall, 1e-9)
        own = 100.0 * (own_cpu_seconds() - self._own) / elapsed
        self.core_busy = tuple(100.0 * (core_busy_seconds(core) - before) / elapsed
                               for core, before in enumerate(self._cores))
        server = -1.0
        if self.server_pid:
            server = 100.0 * (process_cpu_seconds(self.server_pid) - self._server) / elapsed
        return elapsed, own, server


def other_work_percent(window: CpuWindow, pid: int, accounted_percent: float) -> float:
    """How busy the cores `pid` may run on were with anything other than what is accounted for
    (`accounted_percent` of one core): other processes and interrupts. Meaningful when `pid` is
    pinned to one core; a large value means the figure was disturbed."""
    cores = os.sched_getaffinity(pid)
    busy = sum(window.core_busy[core] for core in cores if core < len(window.core_busy))
    return busy - accounted_percent
