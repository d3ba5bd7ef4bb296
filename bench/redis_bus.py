"""`python -m bench.redis_bus`: the Redis bus between two processes over a standalone Redis.

One summary line: publishes/s as fast as the publisher can go (with back-pressure, nothing
dropped), then the p50/p99 publish->receive latency at a steady rate, with the Redis server's CPU
during the throughput run. Each message is a real envelope around a ~200-byte frame text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.process_meter import own_cpu_seconds, process_cpu_seconds
from bench.summary import format_line
from broadcaster.hub.envelope import Envelope, decode, encode
from broadcaster.hub.redis_bus import RedisBus
from broadcaster.hub.topics import Topics
from broadcaster.scaling import ScalingConfig
from tests.support.redis_servers import standalone

PADDING = "x" * 140
STOP = "__stop__"
TS_AT = len('{"ts":"')  # the send time sits right after this, as 20 digits of monotonic ns


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


async def receive(port: int) -> None:
    """The receiving node: records latency per phase; prints one JSON line at the stop marker."""
    config = ScalingConfig(port=port, prefix="bench")
    phases: dict[str, list[float]] = {}
    first_last: dict[str, list[float]] = {}
    cpu_spans: dict[str, list[float]] = {}  # CPU seconds at the first and every 1000th message
    done = asyncio.Event()

    def on_message(topic: str, payload: bytes) -> None:
        now = time.monotonic_ns()
        envelope = decode(payload)
        if envelope.channel == STOP:
            done.set()
            return
        sent = int(envelope.text[TS_AT:TS_AT + 20])
        phases.setdefault(envelope.channel, []).append((now - sent) / 1e6)
        span = first_last.setdefault(envelope.channel, [now / 1e9, now / 1e9])
        span[1] = now / 1e9
        count = len(phases[envelope.channel])
        if count == 1:
            cpu_spans[envelope.channel] = [own_cpu_seconds(), 0.0]
        elif count % 1000 == 1:
            cpu_spans[envelope.channel][1] = own_cpu_seconds()

    bus = RedisBus(config, Topics("bench").names, on_message, node_id="receiver")
    bus.start()
    if not await bus.wait_connected(10.0):
        raise SystemExit("receiver could not connect")
    print("ready", flush=True)
    await asyncio.wait_for(done.wait(), 120.0)
    report = {name: {"count": len(lat), "p50": _percentile(lat, 0.5),
                     "p99": _percentile(lat, 0.99), "span": first_last[name],
                     "cpu_us": 1e6 * (cpu_spans[name][1] - cpu_spans[name][0])
                     / max(1, (len(lat) - 1) // 1000 * 1000)}
              for name, lat in phases.items()}
    print(json.dumps(report), flush=True)
    await bus.close()


def _message(phase: str) -> bytes:
    text = f'{{"ts":"{time.monotonic_ns():020d}","event":"bench","data":"{PADDING}"}}'
    return encode(Envelope(origin="publisher", app_id="100001", channel=phase, text=text))


async def publish(port: int, redis_pid: int, count: int, rate: int, seconds: float) -> str:
    """The publishing node: throughput run, then the steady-rate latency run."""
    config = ScalingConfig(port=port, prefix="bench")
    topic = Topics("bench").names[0]
    bus = RedisBus(config, [topic], lambda t, p: None, node_id="publisher")
    bus.start()
    if not await bus.wait_connected(10.0):
        raise SystemExit("publisher could not connect")
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.redis_bus", "--receive", str(port),
        stdout=asyncio.subprocess.PIPE)
    assert receiver.stdout is not None
    try:
        ready = await asyncio.wait_for(receiver.stdout.readline(), 30.0)
        if ready.strip() != b"ready":
            raise SystemExit("receiver did not start")
        cpu_before, started = process_cpu_seconds(redis_pid), time.monotonic()
        own_before = own_cpu_seconds()
        for _ in range(count):
            while bus.pending >= 4096:  # back-pressure instead of drops
                await asyncio.sleep(0.0005)
            bus.publish(topic, _message("throughput"))
        await bus.flush(30.0)
        elapsed = time.monotonic() - started
        publisher_cpu_us = 1e6 * (own_cpu_seconds() - own_before) / count
        redis_cpu = 100 * (process_cpu_seconds(redis_pid) - cpu_before) / elapsed
        await asyncio.sleep(0.5)
        interval, next_at = 1 / rate, time.monotonic()
        for _ in range(int(rate * seconds)):
            next_at += interval
            bus.publish(topic, _message("steady"))
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await bus.flush(5.0)
        await asyncio.sleep(0.3)
        bus.publish(topic, encode(Envelope("publisher", "100001", STOP, "")))
        await bus.flush(5.0)
        report = json.loads(await asyncio.wait_for(receiver.stdout.readline(), 60.0))
        await asyncio.wait_for(receiver.wait(), 10.0)
    finally:
        if receiver.returncode is None:
            receiver.kill()
            await receiver.wait()
        await bus.close()
    through, steady = report["throughput"], report["steady"]
    span = through["span"][1] - through["span"][0]
    return format_line("redis_bus", {
        "messages": count, "publishes_per_s": round(count / elapsed),
        "received": through["count"], "received_per_s": round(through["count"] / span),
        "dropped": bus.stats.dropped, "redis_cpu_percent": redis_cpu,
        "publisher_cpu_us_per_msg": publisher_cpu_us,
        "receiver_cpu_us_per_msg": through["cpu_us"],
        "steady_rate": rate, "p50_ms": steady["p50"], "p99_ms": steady["p99"],
        "steady_received": steady["count"],
    })


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="steady publishes/s for latency")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--receive", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        asyncio.run(receive(args.receive))
        return 0
    with tempfile.TemporaryDirectory() as directory, standalone(Path(directory)) as server:
        print(asyncio.run(publish(server.port, server.pid, args.messages, args.rate,
                                  args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
