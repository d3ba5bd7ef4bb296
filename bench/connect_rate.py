"""Connection + subscription rate: WebSocket connections per second that complete the handshake,
receive pusher:connection_established, subscribe and receive subscription_succeeded.

    python -m bench.connect_rate --port P --connections 5000 --concurrency 100 [--server-pid PID]

After a warm-up batch (opened, then closed, not measured), the sink keeps `--concurrency`
connections in setup at any moment and starts a new one as each finishes, until `--connections`
have been attempted; connections stay open until the end. The rate is completed subscriptions
divided by the time from the first connect to the last subscription. Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.process_meter import CpuWindow, raise_fd_limit
from bench.sink_process import Sink, Slot
from bench.summary import format_line, load_fields
from bench.target import Target, add_target_arguments, target_from

CHANNEL = "bench-connect"


async def measure(target: Target, connections: int, concurrency: int,
                  warmup_connections: int) -> dict[str, object]:
    """Run the scenario and return the summary fields."""
    problems: list[str] = []
    if warmup_connections:
        warmup = Sink(target, CHANNEL, warmup_connections, concurrency=concurrency,
                      max_seconds=120)
        if not await warmup.wait_ready(100.0):
            problems.append("warmup_timeout")
        warmup.stop()
        await asyncio.sleep(1.0)  # let the server finish closing them
    cpu = CpuWindow(target.pid)
    cpu.start()
    sink = Sink(target, CHANNEL, connections, concurrency=concurrency, max_seconds=180)
    if not await sink.wait_ready(150.0):
        problems.append("setup_timeout")
    _, own_cpu, server_cpu = cpu.stop()
    setup_s = max(sink.setup_seconds(), 1e-9)
    sink_cpu = 100.0 * sink.cpu_seconds() / setup_s
    subscribed = sink.read(Slot.SUBSCRIBED)
    failed = sink.read(Slot.FAILED)
    sink.stop()
    if failed:
        problems.append(f"failed_{failed}")
    return {
        "server": target.label,
        "connections": subscribed,
        "concurrency": concurrency,
        "connections_per_s": round(subscribed / setup_s),
        "seconds": round(setup_s, 2),
        # server CPU time over the setup window per completed subscription
        "server_us_per_connection": round(
            1e4 * server_cpu * setup_s / max(subscribed, 1), 1) if server_cpu >= 0 else -1,
        **load_fields(cpu, target, server_cpu, sink_cpu + own_cpu, problems),
    }


def main() -> None:
    """Parse arguments, run, print the summary line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_target_arguments(parser)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup-connections", type=int, default=1000,
                        help="opened and closed first, not measured (JIT, allocator warm-up)")
    args = parser.parse_args()
    raise_fd_limit(args.connections + 1024)
    fields = asyncio.run(measure(target_from(args), args.connections, args.concurrency,
                                 args.warmup_connections))
    print(format_line("connect_rate", fields), flush=True)


if __name__ == "__main__":
    main()
