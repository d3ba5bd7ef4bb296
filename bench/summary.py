"""The one summary line every load script prints, and reading it back."""

from __future__ import annotations

import os

from bench.process_meter import CpuWindow, other_work_percent
from bench.publisher import PublishStats
from bench.target import Target

# A load generator above this share of its core may itself be what limits the figure.
LOADGEN_CPU_LIMIT_PERCENT = 85.0
# Other work above this share of the server's or the load generator's core disturbed the figure.
NOISE_LIMIT_PERCENT = 25.0


def format_line(scenario: str, fields: dict[str, object]) -> str:
    """`scenario key=value key=value ...` with floats rounded; values must not hold spaces."""
    parts = [scenario]
    for key, value in fields.items():
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={text.replace(' ', '_')}")
    return " ".join(parts)


def parse_line(line: str) -> tuple[str, dict[str, str]]:
    """Invert format_line: (scenario, {key: value})."""
    scenario, *pairs = line.split()
    fields = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    return scenario, fields


def validity(loadgen_cpu_percent: float, problems: list[str]) -> str:
    """`ok`, or the reasons the figure cannot be trusted, joined with commas."""
    reasons = list(problems)
    if loadgen_cpu_percent >= LOADGEN_CPU_LIMIT_PERCENT:
        reasons.append(f"INVALID:loadgen_cpu_{loadgen_cpu_percent:.0f}%")
    return ",".join(reasons) if reasons else "ok"


def interference(window: CpuWindow, target: Target, server_cpu: float,
                 loadgen_cpu: float) -> dict[str, object]:
    """Fields saying how much other work shared the server's and the load generator's cores
    during `window` (percent of a core; near 0 on a quiet machine)."""
    fields: dict[str, object] = {
        "loadgen_core_other": round(other_work_percent(window, os.getpid(), loadgen_cpu), 1)}
    if target.pid is not None:
        fields["server_core_other"] = round(
            other_work_percent(window, target.pid, server_cpu), 1)
    return fields


def delivery_problems(missing: int, closed: int, stats: PublishStats) -> list[str]:
    """Status words for events that never arrived, sockets the server closed, failed publishes."""
    problems = []
    if missing > 0:
        problems.append(f"missing_{missing}")
    if closed:
        problems.append(f"closed_by_server_{closed}")
    if stats.failed:
        problems.append(f"publish_failed_{stats.failed}:{stats.last_error}")
    return problems


def load_fields(window: CpuWindow, target: Target, server_cpu: float, loadgen_cpu: float,
                problems: list[str]) -> dict[str, object]:
    """The closing fields of every summary line: both CPU figures, the interference on each
    core, and the status (`ok` or why the figure cannot be trusted)."""
    noise = interference(window, target, server_cpu, loadgen_cpu)
    return {
        "loadgen_cpu": round(loadgen_cpu, 1),
        "server_cpu": round(server_cpu, 1),
        **noise,
        "status": validity(loadgen_cpu, problems + noisy(noise)),
    }


def noisy(noise: dict[str, object]) -> list[str]:
    """Warnings for the interference fields above NOISE_LIMIT_PERCENT (the figure is kept but
    should be re-measured)."""
    return [f"noisy:{key}_{value}%" for key, value in noise.items()
            if isinstance(value, float) and value > NOISE_LIMIT_PERCENT]
