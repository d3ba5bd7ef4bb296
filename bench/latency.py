"""Publish-to-receive latency at a fixed publish rate (normally half the saturation rate).

    python -m bench.latency --port P --subscribers 1000 --rate EVENTS_PER_S [--server-pid PID]
    python -m bench.latency --port P --subscribers 1000 --rate 10,20,40,... [--bound-ms 50]

Events are published open-loop on a fixed schedule over the HTTP API; each carries the monotonic
clock reading taken just before its request is written. The sink (same machine, same clock) reads
every delivery's timestamp on arrival, so the figures cover the HTTP request, the fan-out to every
subscriber and the delivery through the kernel. Prints one summary line with percentiles in ms.

With several rates (ascending) it measures goodput at a latency bound: each rate is run with fresh
subscribers, in order, until one fails (an event lost, p99 above `--bound-ms`, the publisher
behind its schedule, or another problem); the summary line gives the highest rate that passed,
its p99 and CPU figures, and why the next one failed. A failure caused by the load generator
(`publisher_behind`, or its CPU at the limit) makes the goodput a lower bound, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.process_meter import CpuWindow, raise_fd_limit
from bench.publisher import PublisherPool
from bench.sink_process import CONTROL_PAUSE, CONTROL_RECORD, Sink, Slot
from bench.summary import delivery_problems, format_line, load_fields
from bench.target import Target, add_target_arguments, target_from

CHANNEL = "bench-latency"


async def publish_at_rate(pool: PublisherPool, rate: float, seconds: float) -> int:
    """Start one publish every 1/rate s for `seconds`; return how many were skipped because
    every connection was still busy (the publisher fell behind the schedule)."""
    interval = 1.0 / rate
    skipped = 0
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    due = start
    while due < start + seconds:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if pool.idle_connections():
            task = asyncio.create_task(pool.publish())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            skipped += 1
        due += interval
    if tasks:
        await asyncio.wait(tasks, timeout=10.0)
    return skipped


async def measure(target: Target, subscribers: int, rate: float, warmup_s: float,
                  measure_s: float, publishers: int) -> dict[str, object]:
    """Run the scenario and return the summary fields."""
    sink = Sink(target, CHANNEL, subscribers, max_seconds=warmup_s + measure_s + 120)
    count, problems = await sink.subscribed()
    pool = PublisherPool(target, CHANNEL, publishers)
    await publish_at_rate(pool, rate, warmup_s)
    await asyncio.sleep(0.5)  # let the warm-up's deliveries land before recording
    sent_before, events_before = pool.stats.sent, sink.read(Slot.EVENTS)
    cpu = CpuWindow(target.pid)
    sink_cpu_before = sink.cpu_seconds()
    cpu.start()
    sink.set_control(CONTROL_RECORD)
    skipped = await publish_at_rate(pool, rate, measure_s)
    drain_until = time.monotonic() + 5.0
    expected = (pool.stats.sent - sent_before) * count
    while sink.read(Slot.EVENTS) - events_before < expected and time.monotonic() < drain_until:
        await asyncio.sleep(0.02)
    sink.set_control(CONTROL_PAUSE)
    elapsed, own_cpu, server_cpu = cpu.stop()
    loadgen_cpu = own_cpu + 100.0 * (sink.cpu_seconds() - sink_cpu_before) / elapsed
    missing = expected - (sink.read(Slot.EVENTS) - events_before)
    closed = sink.read(Slot.CLOSED)
    result = sink.stop()
    pool.close()
    if skipped:
        problems.append(f"publisher_behind_{skipped}")
    problems += delivery_problems(missing, closed, pool.stats)
    return {
        "server": target.label,
        "subscribers": count,
        "rate_events_per_s": round(rate, 1),
        "deliveries": int(result.number("latency_samples")),
        "p50_ms": round(result.number("p50_us") / 1000, 2),
        "p90_ms": round(result.number("p90_us") / 1000, 2),
        "p99_ms": round(result.number("p99_us") / 1000, 2),
        "max_ms": round(result.number("max_us") / 1000, 2),
        **load_fields(cpu, target, server_cpu, loadgen_cpu, problems),
    }


async def sweep(target: Target, subscribers: int, rates: list[float], bound_ms: float,
                warmup_s: float, measure_s: float, publishers: int) -> dict[str, object]:
    """Goodput at a latency bound: the highest of `rates` that passes (see the docstring)."""
    passed: dict[str, object] | None = None
    failure = "none_failed"
    for rate in rates:
        fields = await measure(target, subscribers, rate, warmup_s, measure_s, publishers)
        status = str(fields["status"])
        p99 = float(str(fields["p99_ms"]))
        problems = [p for p in status.split(",") if p != "ok" and not p.startswith("noisy:")]
        if p99 > bound_ms:
            problems.append(f"p99_{p99:.0f}ms")
        if problems:
            loadgen = any(p.startswith(("publisher_behind", "INVALID:loadgen")) for p in problems)
            failure = f"{rate:g}:{'LOADGEN_BOUND_' if loadgen else ''}{'+'.join(problems)}"
            break
        passed = fields
    best = passed or {}
    return {
        "server": target.label,
        "subscribers": subscribers,
        "bound_ms": bound_ms,
        "goodput_events_per_s": best.get("rate_events_per_s", 0),
        "goodput_deliveries_per_s": round(float(str(best.get("rate_events_per_s", 0)))
                                          * subscribers),
        "p99_ms": best.get("p99_ms", -1),
        "first_failure": failure,
        "loadgen_cpu": best.get("loadgen_cpu", "-"),
        "server_cpu": best.get("server_cpu", "-"),
        "status": ("lower_bound:loadgen" if "LOADGEN_BOUND" in failure
                   else str(best.get("status", "no_rate_passed"))),
    }


def main() -> None:
    """Parse arguments, run, print the summary line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_target_arguments(parser)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", required=True,
                        help="events published per second; several (comma-separated, "
                             "ascending) for goodput at --bound-ms")
    parser.add_argument("--bound-ms", type=float, default=50.0,
                        help="p99 bound for goodput (several rates)")
    parser.add_argument("--publishers", type=int, default=16,
                        help="connections available to publish on")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    rates = [float(r) for r in str(args.rate).split(",") if r]
    if not rates or not all(0 < r <= 20000 for r in rates) or rates != sorted(rates):
        parser.error("--rate must be ascending values in (0, 20000]")
    raise_fd_limit(args.subscribers + 1024)
    target = target_from(args)
    if len(rates) == 1:
        fields = asyncio.run(measure(target, args.subscribers, rates[0], args.warmup,
                                     args.seconds, args.publishers))
        print(format_line("latency", fields), flush=True)
        return
    fields = asyncio.run(sweep(target, args.subscribers, rates, args.bound_ms, args.warmup,
                               args.seconds, args.publishers))
    print(format_line("goodput", fields), flush=True)


if __name__ == "__main__":
    main()
