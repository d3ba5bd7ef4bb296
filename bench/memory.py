"""Memory per idle subscribed connection: server RSS growth over N connections, divided by N.

    python -m bench.memory --port P --server-pid PID --connections 10000

A first sink opens a few warm-up connections (so code paths and buffers that every server
allocates once are already in place), then the server's VmRSS is read; a second sink opens N more
connections, each subscribed to the same public channel, and after they have all subscribed and
the server has been idle for a moment VmRSS is read again. Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.process_meter import raise_fd_limit, rss_kib
from bench.sink_process import Sink, Slot
from bench.summary import format_line
from bench.target import Target, add_target_arguments, target_from

CHANNEL = "bench-memory"
WARMUP_CONNECTIONS = 20


async def measure(target: Target, connections: int, settle_s: float) -> dict[str, object]:
    """Run the scenario and return the summary fields."""
    if target.pid is None:
        raise SystemExit("--server-pid is required to read the server's memory")
    problems: list[str] = []
    warmup = Sink(target, CHANNEL, WARMUP_CONNECTIONS, max_seconds=300)
    if not await warmup.wait_ready(30.0) or warmup.read(Slot.FAILED):
        problems.append("warmup_failed")
    await asyncio.sleep(settle_s)
    before = rss_kib(target.pid)
    sink = Sink(target, CHANNEL, connections, max_seconds=300)
    if not await sink.wait_ready(120.0):
        problems.append("setup_timeout")
    await asyncio.sleep(settle_s)
    after = rss_kib(target.pid)
    subscribed = sink.read(Slot.SUBSCRIBED)
    failed = sink.read(Slot.FAILED) + sink.read(Slot.CLOSED)
    sink.stop()
    warmup.stop()
    if failed:
        problems.append(f"failed_or_closed_{failed}")
    per_connection = (after - before) / max(subscribed, 1)
    return {
        "server": target.label,
        "connections": subscribed,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round(per_connection, 2),
        "status": ",".join(problems) or "ok",
    }


def main() -> None:
    """Parse arguments, run, print the summary line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_target_arguments(parser)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="idle seconds before each reading")
    args = parser.parse_args()
    raise_fd_limit(args.connections + 1024)
    fields = asyncio.run(measure(target_from(args), args.connections, args.settle))
    print(format_line("memory", fields), flush=True)


if __name__ == "__main__":
    main()
