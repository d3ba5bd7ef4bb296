"""Run every benchmark against our server and soketi, one after the other, and compare them.

    python -m bench [--only fanout,latency,goodput,memory,connect,publish]
                    [--servers ours,soketi[,base]]
                    [--subscribers 1000,10000] [--seconds 5] [--window W] [--repeat N]

For each scenario and each server, a fresh server is started pinned to CPU 0 and the load script
runs pinned to CPU 1 (`taskset`); the script's summary line is printed as it arrives, and a
comparison with the ratio ours/soketi and each target follows at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.process_meter import raise_fd_limit
from bench.servers import REPO_ROOT, SERVER_NAMES, start_server
from bench.summary import parse_line

SERVER_CORE, LOADGEN_CORE = 0, 1
SCRIPT_TIMEOUT_S = 300
# Shown beside a job's own figure when its script reports them.
_EXTRA_FIGURES = ("events_per_s", "connections_per_s", "p99_ms", "first_failure")
SCENARIOS = ("fanout", "latency", "goodput", "memory", "connect", "publish")
# Publish rates tried, in order, for goodput at the latency bound (events/s, per subscriber count).
GOODPUT_RATES = {1000: "10,20,40,60,80,120,160,240,320,480,640",
                 10000: "1,2,3,4,6,8,12,16,24,32,48"}


@dataclass(frozen=True)
class Job:
    """One scenario at one size: which script, which arguments, which figure to compare."""

    name: str
    module: str
    arguments: Callable[[str], list[str] | None]  # per server; None = cannot run
    metric: str
    unit: str
    target: str  # how ours must compare, for the report
    meets: Callable[[float, float], bool]  # (ours, soketi) -> target met
    higher_is_better: bool


Results = dict[str, dict[str, dict[str, str]]]  # job name -> server -> summary fields


def _fixed(arguments: list[str]) -> Callable[[str], list[str] | None]:
    """The same script arguments for every server."""
    return lambda _server: arguments


def _latency_arguments(results: Results, size: int, seconds: float,
                       common: bool) -> Callable[[str], list[str] | None]:
    """Arguments for a latency run at half a saturation rate measured earlier in this run: the
    server's own, or (common) the lowest of all servers', so every server gets the same load."""
    def arguments(server: str) -> list[str] | None:
        saturations = {name: float(fields.get("events_per_s", "0"))
                       for name, fields in results.get(f"fanout-{size}", {}).items()}
        rates = list(saturations.values()) if common else [saturations.get(server, 0.0)]
        if not rates or min(rates) <= 0:
            return None
        rate = max(0.5 * min(rates), 0.5)
        return ["--subscribers", str(size), "--rate", f"{rate:.2f}", "--seconds", str(seconds)]
    return arguments


def _jobs(only: list[str], sizes: list[int], seconds: float, window: int,
          results: Results, publish_connections: int = 8) -> list[Job]:
    jobs: list[Job] = []
    for size in sizes:
        if "fanout" in only:
            window_arguments = ["--window", str(window)] if window else []
            jobs.append(Job(f"fanout-{size}", "bench.fanout",
                            _fixed(["--subscribers", str(size), "--seconds", str(seconds),
                                    *window_arguments]),
                            "deliveries_per_s", "deliveries/s", ">= 1.0x soketi",
                            lambda ours, peer: ours >= peer, True))
    for size in sizes:
        if "latency" in only:
            jobs.append(Job(f"latency-{size}", "bench.latency",
                            _latency_arguments(results, size, seconds, common=False),
                            "p99_ms", "ms p99", "<= soketi", lambda ours, peer: ours <= peer,
                            False))
            jobs.append(Job(f"latency-same-rate-{size}", "bench.latency",
                            _latency_arguments(results, size, seconds, common=True),
                            "p99_ms", "ms p99", "<= soketi (informative)",
                            lambda ours, peer: ours <= peer, False))
    for size in sizes:
        if "goodput" in only:
            rates = GOODPUT_RATES.get(size, "1,2,4,8,16,32,64")
            jobs.append(Job(f"goodput-{size}", "bench.latency",
                            _fixed(["--subscribers", str(size), "--rate", rates, "--seconds",
                                    str(min(seconds, 3.0)), "--bound-ms", "50"]),
                            "goodput_deliveries_per_s", "deliveries/s at p99<=50ms",
                            ">= 1.0x soketi", lambda ours, peer: ours >= peer, True))
    if "memory" in only:
        jobs.append(Job("memory-10000", "bench.memory",
                        _fixed(["--connections", "10000"]), "kib_per_connection",
                        "KiB/conn", "<= 1.0x soketi", lambda ours, peer: ours <= peer, False))
    if "connect" in only:
        jobs.append(Job("connect-10000", "bench.connect_rate",
                        _fixed(["--connections", "10000", "--concurrency", "100"]),
                        "server_us_per_connection", "us CPU/conn", "<= 1.0x soketi",
                        lambda ours, peer: ours <= peer, False))
    if "publish" in only:
        for name, extra in (("publish-1", []), ("publish-batch10", ["--batch", "10"]),
                            ("publish-chat", ["--mix", "chat"])):
            jobs.append(Job(name, "bench.publish",
                            _fixed(["--channels", "2000", "--seconds", str(seconds),
                                    "--connections", str(publish_connections), *extra]),
                            "server_us_per_event", "us CPU/event", "<= 0.5x soketi",
                            lambda ours, peer: ours <= 0.5 * peer, False))
    return jobs


def _failure_line(job: Job, server_name: str, status: str) -> str:
    """A summary line for a run that produced no figure."""
    return f"{job.name} server={server_name} status={status.replace(' ', '_')}"


def _run_script(job: Job, server_name: str, arguments: list[str], log_dir: Path) -> str:
    """Start the server, run the job's script against it, stop the server; the summary line."""
    try:
        server = start_server(server_name, SERVER_CORE, log_dir / f"{server_name}.log")
    except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
        return _failure_line(job, server_name, f"server_failed:{exc}")
    try:
        argv = ["taskset", "-c", str(LOADGEN_CORE), sys.executable, "-m", job.module,
                *server.target_arguments(), *arguments]
        try:
            done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=SCRIPT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return _failure_line(job, server_name, f"timeout_{SCRIPT_TIMEOUT_S}s")
        lines = [line for line in done.stdout.splitlines() if "=" in line]
        if done.returncode != 0 or not lines:
            (log_dir / f"{job.name}-{server_name}.err").write_text(done.stderr)
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            return _failure_line(job, server_name, f"script_failed:{tail[0][:160]}")
        return lines[-1]
    finally:
        server.stop()


def _best(job: Job, attempts: list[dict[str, str]]) -> dict[str, str]:
    """The run that counts: clean runs before noisy ones, then the best figure; runs with an
    unusable status (invalid, failed, lost deliveries) only when there is nothing else."""
    def rank(fields: dict[str, str]) -> tuple[int, float]:
        status = fields.get("status", "")
        try:
            value = float(fields[job.metric])
        except (KeyError, ValueError):
            return (3, 0.0)
        trust = 0 if status == "ok" else 1 if all(
            part.startswith("noisy:") for part in status.split(",")) else 2
        return (trust, -value if job.higher_is_better else value)
    return min(attempts, key=rank)


def _comparison(job: Job, results: Results) -> str:
    by_server = results.get(job.name, {})
    cells = []
    for name in SERVER_NAMES:
        fields = by_server.get(name, {})
        extra = "".join(f", {key} {fields[key]}" for key in _EXTRA_FIGURES
                        if key in fields and key != job.metric)
        cells.append(f"{name} {fields.get(job.metric, 'n/a')} {job.unit}{extra} "
                     f"(loadgen {fields.get('loadgen_cpu', '-')}%, "
                     f"server {fields.get('server_cpu', '-')}%, {fields.get('status', 'not run')})")
    verdict = "n/a"
    try:
        ours = float(by_server["ours"][job.metric])
        peer = float(by_server["soketi"][job.metric])
        if not ours and not peer:
            return f"{job.name:22} | " + " | ".join(cells) + " | neither server reached it"
        ratio = f"{ours / peer:.2f}x" if peer else "inf"
        met = "MET" if job.meets(ours, peer) else "MISSED"
        verdict = f"ours/soketi {ratio}, target {job.target}: {met}"
    except (KeyError, ValueError):
        pass
    return f"{job.name:22} | " + " | ".join(cells) + f" | {verdict}"


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios; print summary lines, then the comparison. Exit 0."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios out of {','.join(SCENARIOS)}")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES))
    parser.add_argument("--subscribers", default="1000,10000",
                        help="subscriber counts for fanout and latency")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--window", type=int, default=0,
                        help="fan-out: events outstanding (default: the script's, "
                             "max(4, 20000 / subscribers))")
    parser.add_argument("--publish-connections", type=int, default=8,
                        help="publish: client connections, each with one request in flight")
    parser.add_argument("--repeat", type=int, default=1, choices=range(1, 6),
                        help="runs per scenario and server; the best trustworthy one counts")
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in only if s not in SCENARIOS] + [s for s in servers
                                                         if s not in (*SERVER_NAMES, "base")]
    if unknown:
        parser.error(f"unknown scenario or server: {', '.join(unknown)}")
    sizes = [int(n) for n in args.subscribers.split(",") if n]
    raise_fd_limit(65536)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    results: Results = {}
    started = time.monotonic()
    print(f"# machine: {_machine()}; server on CPU {SERVER_CORE}, load on CPU {LOADGEN_CORE}; "
          f"logs in {log_dir}", flush=True)
    jobs = _jobs(only, sizes, args.seconds, args.window, results, args.publish_connections)
    for job in jobs:
        runs: dict[str, list[dict[str, str]]] = {name: [] for name in servers}
        for _ in range(args.repeat):
            for server_name in servers:
                arguments = job.arguments(server_name)
                if arguments is None:
                    line = _failure_line(job, server_name, "skipped_needs_fanout_first")
                else:
                    line = _run_script(job, server_name, arguments, log_dir)
                print(line, flush=True)
                runs[server_name].append(parse_line(line)[1])
        results[job.name] = {name: _best(job, attempts) for name, attempts in runs.items()}
    print(f"# comparison ({time.monotonic() - started:.0f} s)", flush=True)
    for job in jobs:
        print(_comparison(job, results), flush=True)
    return 0


def _machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} x {model}"
