"""Fan-out throughput: deliveries per second to N subscribers of one public channel at saturation.

    python -m bench.fanout --port P --subscribers 1000 [--server-pid PID] [--label NAME]

The subscribers are held by the compiled sink (bench/sink); this process publishes over the HTTP
API. Publishing is closed-loop: at most `--window` events are outstanding (published but not yet
received by every subscriber), so the server always has work queued but never an unbounded
backlog. The figure is the number of event frames the subscribers received per second over the
measured interval, after a warm-up. Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.process_meter import CpuWindow, raise_fd_limit
from bench.publisher import PublisherPool
from bench.sink_process import Sink, Slot
from bench.summary import delivery_problems, format_line, load_fields
from bench.target import Target, add_target_arguments, target_from

CHANNEL = "bench-fanout"


class ClosedLoopPublisher:
    """Keeps about `window` events in flight to `subscribers` receivers until told to stop."""

    def __init__(self, pool: PublisherPool, sink: Sink, subscribers: int, window: int) -> None:
        self._pool = pool
        self._sink = sink
        self._subscribers = subscribers
        self._window = window
        self._open = asyncio.Event()
        self.started = 0  # publish requests begun (failed ones are taken back)
        self.stalled = False
        self._stop = False

    def _outstanding(self) -> float:
        return self.started - self._sink.read(Slot.EVENTS) / self._subscribers

    async def _gate(self) -> None:
        """Open the window whenever enough deliveries arrived; notice when they stop coming."""
        last_events, last_progress = -1, time.monotonic()
        while not self._stop:
            events = self._sink.read(Slot.EVENTS)
            now = time.monotonic()
            if events != last_events:
                last_events, last_progress = events, now
            elif now - last_progress > 3.0 and self._outstanding() >= 1:
                self.stalled = True  # deliveries stopped arriving: lost or stuck
                self._stop = True
            if self._outstanding() < self._window:
                self._open.set()
            else:
                self._open.clear()
            await asyncio.sleep(0.0005)
        self._open.set()

    async def _worker(self) -> None:
        while not self._stop:
            await self._open.wait()
            if self._stop:
                return
            if self._outstanding() >= self._window:
                self._open.clear()
                continue
            self.started += 1
            failed_before = self._pool.stats.failed
            await self._pool.publish()
            if self._pool.stats.failed > failed_before:
                self.started -= 1
                await asyncio.sleep(0.01)

    async def run(self, connections: int, seconds: float) -> None:
        """Publish with `connections` concurrent requests for at most `seconds`."""
        gate = asyncio.create_task(self._gate())
        workers = [asyncio.create_task(self._worker()) for _ in range(connections)]
        await asyncio.sleep(seconds)
        self._stop = True
        await asyncio.wait([gate, *workers], timeout=5.0)
        for task in (gate, *workers):
            task.cancel()


async def measure(target: Target, subscribers: int, publishers: int, window: int,
                  warmup_s: float, measure_s: float) -> dict[str, object]:
    """Run the scenario and return the summary fields."""
    sink = Sink(target, CHANNEL, subscribers, max_seconds=warmup_s + measure_s + 120)
    count, problems = await sink.subscribed()
    pool = PublisherPool(target, CHANNEL, publishers)
    publisher = ClosedLoopPublisher(pool, sink, max(count, 1), window)
    cpu = CpuWindow(target.pid)
    running = asyncio.create_task(publisher.run(publishers, warmup_s + measure_s))
    await asyncio.sleep(warmup_s)
    events_before, sink_cpu_before = sink.read(Slot.EVENTS), sink.cpu_seconds()
    cpu.start()
    await asyncio.sleep(measure_s)
    events_after, sink_cpu_after = sink.read(Slot.EVENTS), sink.cpu_seconds()
    elapsed, own_cpu, server_cpu = cpu.stop()
    await running
    drain_until = time.monotonic() + 3.0
    while sink.read(Slot.EVENTS) < pool.stats.sent * count and time.monotonic() < drain_until:
        await asyncio.sleep(0.05)
    missing = pool.stats.sent * count - sink.read(Slot.EVENTS)
    closed = sink.read(Slot.CLOSED)
    sink.stop()
    pool.close()
    if publisher.stalled:
        problems.append("stalled")
    problems += delivery_problems(missing, closed, pool.stats)
    sink_cpu = 100.0 * (sink_cpu_after - sink_cpu_before) / elapsed
    delivered = events_after - events_before
    return {
        "server": target.label,
        "subscribers": count,
        "deliveries_per_s": round(delivered / elapsed),
        "events_per_s": round(delivered / elapsed / max(count, 1), 1),
        "sink_cpu": round(sink_cpu, 1),
        "published": pool.stats.sent,
        "publish_connections_opened": pool.stats.reconnects,
        **load_fields(cpu, target, server_cpu, own_cpu + sink_cpu, problems),
    }


def main() -> None:
    """Parse arguments, run, print the summary line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_target_arguments(parser)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--publishers", type=int, default=8, help="concurrent publish requests")
    parser.add_argument("--window", type=int, default=0,
                        help="events in flight (default: enough for ~20,000 deliveries, >= 4)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    raise_fd_limit(args.subscribers + 1024)
    window = args.window or max(4, 20000 // args.subscribers)
    fields = asyncio.run(measure(target_from(args), args.subscribers, args.publishers, window,
                                 args.warmup, args.seconds))
    print(format_line("fanout", fields), flush=True)


if __name__ == "__main__":
    main()
