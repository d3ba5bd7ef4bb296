"""Webhook figures: delivery latency, and a receiver that is down for a minute.

Starts a real broadcaster with one webhook (channel_occupied + channel_vacated) pointed at a
local receiver (tests/support/webhook_receiver.py), then prints one line:

    webhooks occupied_p50_ms=… occupied_p99_ms=… outage_s=60 outage_events=… delivered=…
        lost=… duplicates=… drain_s=… status=ok

- occupied_*: from a client sending `pusher:subscribe` on a new channel to the receiver reading
  the POST that carries its `channel_occupied`. One new channel every `--interval-ms`; the
  figure includes the batching wait (a batch leaves at most 250 ms after its first event).
- outage: the receiver stops listening for `--outage` seconds while a client opens and closes a
  new channel every 100 ms (one channel_occupied and, 3 s later, one channel_vacated each);
  then it comes back on the same port. `delivered` counts distinct events received after the
  recovery, `lost` the generated ones never received, `duplicates` repeats, `drain_s` the time
  from the recovery to the last expected event (it includes the wait for the next retry, whose
  delay grows to 60 s during a long outage, and the 3 s hold of the last channels' vacated).

Run: .venv/bin/python -m bench.webhooks [--outage 60] [--channels 400] [--interval-ms 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.summary import format_line
from tests.support.processes import Broadcaster, running_broadcaster
from tests.support.pusher_client import PusherTestClient
from tests.support.webhook_receiver import WebhookReceiver

CHURN_INTERVAL = 0.1


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _arrivals(receiver: WebhookReceiver, name: str) -> dict[str, float]:
    """channel -> first arrival time of its `name` event, over requests answered 2xx."""
    first: dict[str, float] = {}
    for request in receiver.snapshot():
        if 200 <= request.status < 300:
            for event in request.events:
                if event["name"] == name:
                    first.setdefault(event["channel"], request.at)
    return first


async def measure_latency(server: Broadcaster, receiver: WebhookReceiver, channels: int,
                          interval: float) -> list[float]:
    """Seconds from subscribe to the receiver reading channel_occupied, one per channel."""
    sent: dict[str, float] = {}
    async with PusherTestClient(server.ws_url) as client:
        for i in range(channels):
            name = f"latency-{i}"
            sent[name] = time.monotonic()
            await client.subscribe(name)
            await asyncio.sleep(max(0.0, sent[name] + interval - time.monotonic()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_arrivals(receiver, "channel_occupied")) < len(
                sent):
            await asyncio.sleep(0.05)
    arrived = _arrivals(receiver, "channel_occupied")
    return [arrived[name] - at for name, at in sent.items() if name in arrived]


async def measure_outage(server: Broadcaster, receiver: WebhookReceiver,
                         outage: float) -> dict[str, object]:
    """Events generated while the receiver is down, and what arrives once it is back."""
    already = len(receiver.snapshot())
    receiver.down()
    expected: set[tuple[str, str]] = set()
    started = time.monotonic()
    async with PusherTestClient(server.ws_url) as client:
        for i in range(int(outage / CHURN_INTERVAL)):
            name = f"outage-{i}"
            await client.subscribe(name)
            await client.send({"event": "pusher:unsubscribe", "data": {"channel": name}})
            expected |= {("channel_occupied", name), ("channel_vacated", name)}
            await asyncio.sleep(max(0.0, started + (i + 1) * CHURN_INTERVAL - time.monotonic()))
    receiver.start()
    recovered = time.monotonic()
    last_arrival = recovered
    seen: list[tuple[str, str]] = []
    deadline = recovered + 120  # two maximum backoff delays
    while time.monotonic() < deadline:
        seen = [(e["name"], e["channel"]) for r in receiver.snapshot()[already:]
                if 200 <= r.status < 300 for e in r.events]
        if expected <= set(seen):
            last_arrival = max(r.at for r in receiver.snapshot()[already:])
            break
        await asyncio.sleep(0.1)
    delivered = expected & set(seen)
    return {"outage_s": round(recovered - started), "outage_events": len(expected),
            "delivered": len(delivered), "lost": len(expected - delivered),
            "duplicates": len(seen) - len(set(seen)),
            "drain_s": round(last_arrival - recovered, 2) if delivered == expected else -1}


async def run(args: argparse.Namespace) -> str:
    receiver = WebhookReceiver().start()
    hooks = [{"url": receiver.url, "event_types": ["channel_occupied", "channel_vacated"]}]
    try:
        with tempfile.TemporaryDirectory() as tmp, running_broadcaster(
                Path(tmp), extra_env={"REVERB_APP_WEBHOOKS": json.dumps(hooks)}) as server:
            latencies = await measure_latency(server, receiver, args.channels,
                                              args.interval_ms / 1000)
            outage = await measure_outage(server, receiver, args.outage)
    finally:
        receiver.stop()
    missing = args.channels - len(latencies)
    problems = [f"latency_missing_{missing}"] if missing else []
    if outage["lost"]:
        problems.append(f"lost_{outage['lost']}")
    return format_line("webhooks", {
        "occupied_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1) if latencies else -1,
        "occupied_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1) if latencies else -1,
        "samples": len(latencies),
        **outage,
        "status": ",".join(problems) or "ok",
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the receiver is down")
    parser.add_argument("--channels", type=int, default=400, help="latency samples")
    parser.add_argument("--interval-ms", type=float, default=25.0,
                        help="time between new channels in the latency phase")
    print(asyncio.run(run(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
