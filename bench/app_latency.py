"""Chat app latency: publish overhead per chunk, and model delta → subscribed WebSocket client.

Starts a real broadcaster, the app (`python -m app serve`) pointed at the scripted Claude
stand-in, and a WebSocket client subscribed through the app's `/broadcasting/auth`. Prints one
line:

    app_latency publish_p50_ms=… publish_p99_ms=… delta_to_client_p50_ms=… delta_to_client_p99_ms=…

- publish: time inside `PusherPublisher.trigger` for one chunk-sized event on a kept-alive
  connection (the batch tick, signing, HTTP round trip, the broadcaster's fan-out to one
  subscriber);
- delta_to_client: from the stand-in writing a text delta to its socket (the SDK yields it right
  after) to the subscribed client receiving the `message.chunk` that carries it. Deltas arrive
  every `--delta-ms` (default 50 ms, above the 30 ms coalescing interval, so each delta is
  published at once; with faster deltas the figure includes the coalescing wait by design).

Run: .venv/bin/python -m bench.app_latency [--publishes 1000] [--replies 5] [--deltas 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.config import BroadcasterSettings
from app.services.publisher import PusherPublisher
from bench.summary import format_line
from tests.app.client import Listener, register
from tests.support.app_server import running_app
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster, running_broadcaster


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure_publish(server: Broadcaster, count: int) -> list[float]:
    """Seconds per publish of a ~100-byte chunk event, after a warm-up, one subscriber."""
    settings = BroadcasterSettings(server.app_id, server.key, server.secret, server.host,
                                   server.port, "http")
    publisher = PusherPublisher(settings)
    listener = await Listener.open(server)
    await listener.ws.send('{"event":"pusher:subscribe","data":{"channel":"bench-chunks"}}')
    await listener.wait_for(lambda e: e["event"].endswith("subscription_succeeded"))
    chunk = {"message_id": 1, "chunk": "a few words of a reply ", "seq": 0}
    for seq in range(50):
        await publisher.trigger(["bench-chunks"], "message.chunk", {**chunk, "seq": seq})
    publisher.stats.durations.clear()
    for seq in range(count):
        await publisher.trigger(["bench-chunks"], "message.chunk", {**chunk, "seq": seq})
    durations = list(publisher.stats.durations)
    await publisher.aclose()
    await listener.close()
    return durations


async def measure_end_to_end(server: Broadcaster, claude: FakeClaude, app_url: str,
                             replies: int, deltas: int, delta_ms: int) -> list[float]:
    """Seconds from each delta's write by the stand-in to its chunk's arrival at the client."""
    reply = "".join(f"<{i:05d}>" for i in range(deltas))
    claude.set_default(Script(reply=reply, chunk_size=7, delay=delta_ms / 1000))
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=app_url, timeout=10) as http:
        user = await register(http, "Bench")
        conversation = await user.new_conversation()
        listener = await Listener.open(server)
        await listener.subscribe(user, f"private-{conversation['channel']}")
        for _ in range(replies):
            claude.sent.clear()
            posted = await user.post(f"/api/conversations/{conversation['id']}/messages",
                                     {"message": "measure me"})
            reply_id = posted.json()["assistant_message"]["id"]
            await listener.completed(reply_id, timeout=60)
            sent = list(claude.sent)
            chunk_events = [e for e in listener.named("message.chunk")
                            if e["data"]["message_id"] == reply_id]
            # A delta is delivered by the first chunk whose cumulative text covers its end.
            ends, total = [], 0
            for event in chunk_events:
                total += len(event["data"]["chunk"])
                ends.append((total, event["received_at"]))
            position = 0
            for sent_at, delta in sent:
                position += len(delta)
                received = next(at for end, at in ends if end >= position)
                latencies.append(received - sent_at)
        await listener.close()
    return latencies


async def main_async(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory() as tmp, running_broadcaster(Path(tmp)) as server:
        publishes = await measure_publish(server, args.publishes)
        with FakeClaude() as claude, running_app(Path(tmp), broadcaster=server,
                                                 claude_url=claude.base_url) as app:
            started = time.monotonic()
            latencies = await measure_end_to_end(server, claude, app.base_url, args.replies,
                                                 args.deltas, args.delta_ms)
            elapsed = time.monotonic() - started
    return format_line("app_latency", {
        "publish_p50_ms": _percentile(publishes, 0.5) * 1000,
        "publish_p99_ms": _percentile(publishes, 0.99) * 1000,
        "publish_mean_ms": statistics.fmean(publishes) * 1000,
        "publishes": len(publishes),
        "delta_to_client_p50_ms": _percentile(latencies, 0.5) * 1000,
        "delta_to_client_p99_ms": _percentile(latencies, 0.99) * 1000,
        "deltas": len(latencies),
        "delta_interval_ms": args.delta_ms,
        "seconds": elapsed,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishes", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=5)
    parser.add_argument("--deltas", type=int, default=40)
    parser.add_argument("--delta-ms", type=int, default=50)
    print(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
