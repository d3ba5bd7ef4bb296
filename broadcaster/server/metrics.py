"""Prometheus metrics, health and readiness on a separate port.

Nothing on the message path touches `prometheus_client`: connections bump plain integers
(`NodeCounters`, `Hub.delivered`) and `NodeCollector` turns them into metric families when
Prometheus scrapes. Gauges (connections, subscriptions, channels) are counted from the live
connections at that moment. The scrape runs on the event loop, so it never races the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from broadcaster.hub.base import DeliveryCounter

if TYPE_CHECKING:
    from broadcaster.server.node import BroadcastServer

log = logging.getLogger("broadcaster.metrics")

WEBHOOK_COUNTERS = ("delivered", "retried", "failed", "dropped")
_REQUEST_TIMEOUT = 5.0


class LagSampler:
    """Event-loop lag: how late a sleep of `interval` seconds wakes up, sampled continuously."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.last = 0.0
        self._max = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._task is not None:  # until stop() cancels it
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, loop.time() - started - self.interval)
            self._max = max(self._max, self.last)

    def take_max(self) -> float:
        """The worst lag since the previous call (one scrape to the next)."""
        worst, self._max = self._max, self.last
        return worst


def webhook_stats(server: BroadcastServer) -> Mapping[str, int] | None:
    """The webhook dispatcher's counters by name, when some app has webhooks."""
    if server.webhooks is None:
        return None
    return dataclasses.asdict(server.webhooks.stats)


class NodeCollector:
    """Reads one server's counters and live connections at scrape time."""

    def __init__(self, server: BroadcastServer, lag: LagSampler) -> None:
        self.server = server
        self.lag = lag

    def collect(self) -> Iterable[Metric]:
        node = self.server.node
        if node is None:
            return
        connections = GaugeMetricFamily("broadcaster_connections",
                                        "Open Pusher connections on this node", labels=["app"])
        subscriptions = GaugeMetricFamily("broadcaster_subscriptions",
                                          "Channel subscriptions on this node", labels=["app"])
        channels = GaugeMetricFamily("broadcaster_channels",
                                     "Occupied channels on this node", labels=["app"])
        per_app: dict[str, list[int]] = {app.id: [0, 0] for app in node.apps}
        names: dict[str, set[str]] = {app.id: set() for app in node.apps}
        for connection in list(node.websockets.values()):
            pusher = connection.pusher
            if pusher is None:  # refused at connect, closing
                continue
            counts = per_app.setdefault(pusher.app.id, [0, 0])
            counts[0] += 1
            counts[1] += len(pusher.channels)
            names.setdefault(pusher.app.id, set()).update(pusher.channels)
        for app_id, (open_connections, subscribed) in per_app.items():
            connections.add_metric([app_id], open_connections)
            subscriptions.add_metric([app_id], subscribed)
            channels.add_metric([app_id], len(names[app_id]))
        yield from (connections, subscriptions, channels)

        counters = node.counters
        # Any hub built on `Hub.__init__` has it; a hub that is not still gets scraped.
        delivered = getattr(node.hub, "delivered", None) or DeliveryCounter()
        yield CounterMetricFamily("broadcaster_websocket_messages_received",
                                  "WebSocket text messages received from clients",
                                  value=counters.messages_in)
        yield CounterMetricFamily("broadcaster_websocket_received_bytes",
                                  "Bytes received on WebSocket connections",
                                  value=counters.bytes_in)
        yield CounterMetricFamily("broadcaster_websocket_messages_sent",
                                  "WebSocket messages sent: events fanned out plus replies",
                                  value=delivered.frames + counters.messages_out)
        yield CounterMetricFamily("broadcaster_websocket_sent_bytes",
                                  "Bytes of WebSocket messages sent (frames included)",
                                  value=delivered.bytes + counters.bytes_out)
        requests = CounterMetricFamily("broadcaster_http_requests",
                                       "HTTP requests on the main port by route and status",
                                       labels=["route", "status"])
        for (route, status), count in sorted(counters.http.items()):
            requests.add_metric([route, str(status)], count)
        yield requests

        stats = webhook_stats(self.server)
        if stats is not None:
            for name in WEBHOOK_COUNTERS:
                yield CounterMetricFamily(f"broadcaster_webhooks_{name}",
                                          f"Webhook deliveries {name}", value=stats.get(name, 0))
            yield GaugeMetricFamily("broadcaster_webhooks_pending",
                                    "Webhooks queued and not yet delivered",
                                    value=stats.get("pending", 0))

        yield GaugeMetricFamily("broadcaster_event_loop_lag_seconds",
                                "Event-loop lag at the latest sample", value=self.lag.last)
        yield GaugeMetricFamily("broadcaster_event_loop_lag_max_seconds",
                                "Worst event-loop lag since the previous scrape",
                                value=self.lag.take_max())
        yield GaugeMetricFamily("broadcaster_ready",
                                "1 while accepting connections, 0 while shutting down",
                                value=1 if node.accepting else 0)


def registry_for(server: BroadcastServer, lag: LagSampler) -> CollectorRegistry:
    """Our collector plus the process, platform and garbage-collector ones."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(server, lag))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsServer:
    """`GET /metrics`, `/up` and `/ready` on their own port (one request per connection)."""

    def __init__(self, server: BroadcastServer) -> None:
        self.server = server
        self.lag = LagSampler()
        self.registry = registry_for(server, self.lag)
        self._listener: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Bind and serve; raises OSError when the address is in use."""
        self._listener = await asyncio.start_server(self._handle, host, port,
                                                    reuse_address=True, limit=16_384)
        self.lag.start()

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.lag.stop()
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listener.wait_closed(), 1.0)

    def answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for one request."""
        if method not in ("GET", "HEAD"):
            return 405, "application/json", b'{"error":"Method not allowed"}'
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/up":
            return 200, "application/json", b'{"health":"OK"}'
        if path == "/ready":
            node = self.server.node
            ready = node is not None and node.accepting
            body = json.dumps({"ready": ready} if ready else
                              {"ready": False, "reason": "shutting down"}).encode()
            return (200 if ready else 503), "application/json", body
        return 404, "application/json", b'{"error":"Not found"}'

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, content_type, body = self.answer(method, target.partition("?")[0])
            headers = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                       f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                       "Connection: close\r\n\r\n").encode()
            writer.write(headers if method == "HEAD" else headers + body)
            await asyncio.wait_for(writer.drain(), _REQUEST_TIMEOUT)
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass  # a scraper that hangs up or sends garbage gets nothing
        except Exception:
            log.exception("metrics request failed")
        finally:
            writer.close()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
