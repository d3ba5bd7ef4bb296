"""HTTP publish cost: signed `POST /apps/{id}/events` (or `batch_events`) requests, one after the
other on a few connections, to many channels with one subscriber each.

    python -m bench.publish --port P --server-pid PID [--channels 2000] [--batch 1|10]
                            [--mix chat] [--connections 8] [--rate R] [--seconds 5]

The sink holds one subscriber on each of `--channels` public channels. `--connections` clients
each keep one request in flight (closed loop, or open loop at `--rate` requests/s); a connection
is kept alive while the server allows it, and reopened after every response when the server
closes it (soketi 1.6.1 answers every request with `Connection: close`, so its figure includes a
TCP connection per request, which is what its users get). Requests are signed once per channel
before the run (the signature stays valid for 600 s), so the load generator only writes bytes and
reads statuses. `--mix chat` interleaves, per 10 requests, 8 single events of ~60 bytes, one
batch of 3 and one 2 KiB event. The figures: events published per second, server CPU microseconds
per event, and every event must reach its subscriber. Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import time
from itertools import cycle

from bench.process_meter import CpuWindow, process_cpu_seconds, raise_fd_limit
from bench.sink_process import Sink, Slot
from bench.summary import format_line, load_fields
from bench.target import Target, add_target_arguments, target_from

CHANNEL = "bench-publish"
WARMUP_S = 1.0


def _signed(target: Target, resource: str, body: bytes) -> bytes:
    path = f"/apps/{target.app_id}/{resource}"
    query = (f"auth_key={target.key}&auth_timestamp={int(time.time())}&auth_version=1.0"
             f"&body_md5={hashlib.md5(body).hexdigest()}")
    signature = hmac.new(target.secret.encode(), f"POST\n{path}\n{query}".encode(),
                         hashlib.sha256).hexdigest()
    return (f"POST {path}?{query}&auth_signature={signature} HTTP/1.1\r\n"
            f"Host: {target.host}:{target.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _event(channel: str, size: int) -> dict[str, object]:
    return {"name": "bench-event", "channel": channel, "data": "x" * size}


def build_requests(target: Target, channels: int, batch: int,
                   mix: str | None) -> list[tuple[bytes, int]]:
    """Pre-signed requests with the number of events each carries, cycling over the channels."""
    rng = random.Random(7)
    names = [f"{CHANNEL}-{i}" for i in range(channels)]
    requests: list[tuple[bytes, int]] = []
    for i in range(max(channels, 200)):
        if mix == "chat":
            kind = i % 10
            if kind == 8:
                picked = rng.sample(names, 3)
                body = {"batch": [_event(c, 60) for c in picked]}
                requests.append((_signed(target, "batch_events", _dump(body)), 3))
                continue
            size = 2048 if kind == 9 else 60
            requests.append((_signed(target, "events", _dump(_event(names[i % channels],
                                                                     size))), 1))
        elif batch > 1:
            body = {"batch": [_event(names[(i * batch + j) % channels], 200)
                              for j in range(batch)]}
            requests.append((_signed(target, "batch_events", _dump(body)), batch))
        else:
            requests.append((_signed(target, "events", _dump(_event(names[i % channels], 200))),
                             1))
    return requests


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _Client(asyncio.Protocol):
    """One HTTP/1.1 client connection: writes a request, waits for the whole response."""

    def __init__(self, done: asyncio.Future[tuple[int, bool]]) -> None:
        self.done = done
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].lower()
        length = 0
        start = head.find(b"content-length:")
        if start >= 0:
            length = int(head[start + 15:].split(b"\r\n", 1)[0])
        if len(self._buffer) < end + 4 + length:
            return
        self._buffer = self._buffer[end + 4 + length:]
        keep = b"connection: close" not in head
        if not self.done.done():
            self.done.set_result((int(head[9:12]), keep))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done.done():
            self.done.set_exception(ConnectionError("closed before the response"))


class Publisher:
    """Requests over `connections` connections until `stop` is set; counts what succeeded."""

    def __init__(self, target: Target, requests: list[tuple[bytes, int]], connections: int,
                 rate: float) -> None:
        self._target = target
        self._requests = cycle(requests)
        self._connections = connections
        self._interval = connections / rate if rate > 0 else 0.0
        self.stop = False
        self.requests = self.events = self.failed = self.opened = 0
        self.last_error = ""

    async def _one(self) -> None:
        loop = asyncio.get_running_loop()
        client: _Client | None = None
        next_at = time.monotonic()
        while not self.stop:
            if self._interval:
                next_at += self._interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            request, events = next(self._requests)
            done: asyncio.Future[tuple[int, bool]] = loop.create_future()
            try:
                if client is None or client.closed:
                    _, client = await loop.create_connection(
                        self._new_client, self._target.host, self._target.port)
                    self.opened += 1
                client.done = done
                assert client.transport is not None
                client.transport.write(request)
                status, keep = await asyncio.wait_for(done, 10.0)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.failed += 1
                self.last_error = repr(exc)[:120]
                client = None
                await asyncio.sleep(0.01)
                continue
            if 200 <= status < 300:
                self.requests += 1
                self.events += events
            else:
                self.failed += 1
                self.last_error = f"HTTP_{status}"
            if not keep:
                assert client.transport is not None
                client.transport.close()
                client = None
        if client is not None and client.transport is not None:
            client.transport.close()

    @staticmethod
    def _new_client() -> _Client:
        return _Client(asyncio.get_running_loop().create_future())  # replaced per request

    async def run(self) -> None:
        """Publish on every connection until `stop` is set."""
        await asyncio.gather(*(self._one() for _ in range(self._connections)))


async def measure(target: Target, channels: int, batch: int, mix: str | None, connections: int,
                  rate: float, seconds: float) -> dict[str, object]:
    """Run the scenario and return the summary fields."""
    problems: list[str] = []
    sink = Sink(target, CHANNEL, channels, channels=channels, max_seconds=seconds + 120)
    subscribed_ok = await sink.wait_ready(60.0)
    if not subscribed_ok or sink.read(Slot.SUBSCRIBED) != channels:
        problems.append(f"subscribed_{sink.read(Slot.SUBSCRIBED)}_of_{channels}")
    publisher = Publisher(target, build_requests(target, channels, batch, mix), connections,
                          rate)
    running = asyncio.ensure_future(publisher.run())
    await asyncio.sleep(WARMUP_S)
    cpu = CpuWindow(target.pid)
    sink_cpu_before = sink.cpu_seconds()
    server_before = process_cpu_seconds(target.pid) if target.pid else 0.0
    events_before, requests_before = publisher.events, publisher.requests
    cpu.start()
    await asyncio.sleep(seconds)
    events = publisher.events - events_before
    requests = publisher.requests - requests_before
    server_seconds = (process_cpu_seconds(target.pid) - server_before) if target.pid else 0.0
    elapsed, own_cpu, server_cpu = cpu.stop()
    sink_cpu = 100.0 * (sink.cpu_seconds() - sink_cpu_before) / elapsed
    publisher.stop = True
    await running
    # Every published event must reach its one subscriber.
    deadline = time.monotonic() + 5.0
    while sink.read(Slot.EVENTS) < publisher.events and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    missing = publisher.events - sink.read(Slot.EVENTS)
    closed = sink.read(Slot.CLOSED)
    sink.stop()
    if missing:
        problems.append(f"missing_{missing}")
    if closed:
        problems.append(f"closed_by_server_{closed}")
    if publisher.failed:
        problems.append(f"publish_failed_{publisher.failed}:{publisher.last_error}")
    return {
        "server": target.label,
        "channels": channels,
        "batch": "chat" if mix == "chat" else batch,
        "connections": connections,
        "events_per_s": round(events / elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1),
        "server_us_per_event": round(1e6 * server_seconds / max(events, 1), 1),
        "server_us_per_request": round(1e6 * server_seconds / max(requests, 1), 1),
        "connections_opened": publisher.opened,
        **load_fields(cpu, target, server_cpu, own_cpu + sink_cpu, problems),
    }


def main() -> None:
    """Parse arguments, run, print the summary line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_target_arguments(parser)
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1, choices=range(1, 11))
    parser.add_argument("--mix", choices=["chat"], default=None)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests per second in all (0: closed loop, as fast as answered)")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    raise_fd_limit(args.channels + 1024)
    fields = asyncio.run(measure(target_from(args), args.channels, args.batch, args.mix,
                                 args.connections, args.rate, args.seconds))
    print(format_line("publish", fields), flush=True)


if __name__ == "__main__":
    main()
