"""A real HTTP webhook receiver on a free loopback port, run in threads, for tests and bench.

It records every POST (path, headers, raw body, arrival time, the status it answered) and can
be told to answer 500, to answer slowly, or to be down (nothing listening, open connections cut)
and then to come back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.processes import free_port

ANSWER_DEADLINE = 4.0  # a POST answered later than this does not count as delivered


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the body had been read
    status: int  # what the receiver answered
    delay: float = 0.0  # how long it waited before answering

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.payload["events"]
        return events


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body are written separately; without this, Nagle's algorithm and delayed
        # ACKs add ~40 ms to every answer, which no real web server does.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.owner.lock:
            self.server.owner.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.owner.lock:
            self.server.owner.connections.discard(self.connection)

    def do_POST(self) -> None:
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with owner.lock:
            status = 500 if owner.failures_left > 0 else owner.status
            owner.failures_left = max(0, owner.failures_left - 1)
            delay = owner.delay
        owner.add(Received(self.path, dict(self.headers.items()), body, time.monotonic(), status,
                           delay))
        if delay:
            time.sleep(delay)
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests`
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, owner: WebhookReceiver) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)


class WebhookReceiver:
    """`start()`, point a webhook at `url`, then `await until(...)` what should arrive."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.connections: set[socket.socket] = set()
        self.status = 200
        self.failures_left = 0
        self.delay = 0.0
        self.answer_deadline = ANSWER_DEADLINE
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def start(self) -> WebhookReceiver:
        self._server = _Server(self.port, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening and cut every open connection: the receiver is unreachable."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.down()

    def fail_next(self, count: int) -> None:
        """Answer the next `count` POSTs with 500."""
        with self.lock:
            self.failures_left = count

    def add(self, received: Received) -> None:
        with self.lock:
            self.requests.append(received)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def accepted_events(self) -> list[dict[str, Any]]:
        """Events of every POST answered 2xx within `answer_deadline`, in arrival order."""
        return [event for r in self.snapshot()
                if 200 <= r.status < 300 and r.delay < self.answer_deadline for event in r.events]

    async def until(self, predicate: Callable[[list[dict[str, Any]]], bool], what: str,
                    timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll (without blocking the event loop) until `predicate(accepted_events())`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.accepted_events()
            if predicate(events):
                return events
            await asyncio.sleep(0.02)
        raise AssertionError(f"webhook receiver: no {what} within {timeout}s; "
                             f"got {self.accepted_events()}")


def named(name: str, channel: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """Predicate on one event: its name (and channel)."""
    return lambda e: e.get("name") == name and (channel is None or e.get("channel") == channel)


def count(events: list[dict[str, Any]], name: str, channel: str | None = None) -> int:
    return sum(1 for e in events if named(name, channel)(e))
