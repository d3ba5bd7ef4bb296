"""The connection classes fed bytes through a fake transport, in process: what they write back,
in which order, and when they close."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from broadcaster.hub.memory import MemoryHub
from broadcaster.protocol.apps import App, AppRegistry
from broadcaster.server.http_connection import MAX_HEADER_BYTES, HttpConnection
from broadcaster.server.node import BroadcastServer
from broadcaster.server.state import NodeState, ServerLimits
from broadcaster.server.websocket import WebSocketConnection, encode_text_frame
from tests.support.api_client import signed_query

APP = App(id="1", key="key", secret="secret")


class FakeTransport(asyncio.Transport):
    """Collects what is written; records close, abort and pausing; protocol switches too."""

    def __init__(self, protocol: asyncio.Protocol, buffered: int = 0) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = b""
        self.closed = self.aborted = self.paused = False
        self.buffered = buffered  # what get_write_buffer_size reports

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol


class SlowHub(MemoryHub):
    """Publishes only once `release` is set, like a hub waiting on a remote server."""

    def __init__(self) -> None:
        super().__init__(encode_text_frame)
        self.release = asyncio.Event()
        self._later: set[asyncio.Task[None]] = set()

    def start_publish(self, app: App, channel: str, text: str,
                      except_socket_id: str | None) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.release.wait()
            super(SlowHub, self).start_publish(app, channel, text, except_socket_id)
            done.set_result(None)

        task = asyncio.ensure_future(later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)
        return done

    async def publish(self, app: App, channel: str, text: str,
                      except_socket_id: str | None = None) -> None:
        await self.release.wait()
        await super().publish(app, channel, text, except_socket_id)


def make_node(hub: MemoryHub | None = None, **limits: Any) -> NodeState:
    return NodeState(AppRegistry([APP]), hub or MemoryHub(encode_text_frame),
                     ServerLimits(**limits), asyncio.get_running_loop())


def connect(node: NodeState) -> tuple[HttpConnection, FakeTransport]:
    connection = HttpConnection(node)
    transport = FakeTransport(connection)
    connection.connection_made(transport)
    return connection, transport


def feed(transport: FakeTransport, data: bytes) -> None:
    """Deliver bytes to whichever protocol owns the transport now."""
    transport.protocol.data_received(data)


def events_request(channel: str, data: str = "x", *, batch: bool = False) -> bytes:
    path = f"/apps/{APP.id}/{'batch_events' if batch else 'events'}"
    event = {"name": "e", "channel": channel, "data": data}
    body = json.dumps({"batch": [event]} if batch else event).encode()
    query = signed_query(APP.key, APP.secret, "POST", path, body)
    return (f"POST {path}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def upgrade_request(key: str = APP.key, version: str = "13") -> bytes:
    return (f"GET /app/{key}?protocol=7&client=js&version=8.4.0 HTTP/1.1\r\nHost: x\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}"
            "\r\n\r\n").encode()


def masked_text(text: str) -> bytes:
    """A client text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    return (bytes([0x81, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def statuses(written: bytes) -> list[int]:
    return [int(part[:3]) for part in written.split(b"HTTP/1.1 ")[1:]]


async def test_pipelined_keep_alive_requests_are_answered_in_order() -> None:
    connection, transport = connect(make_node())
    feed(transport, events_request("a") + b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n"
         + b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" + events_request("b"))
    assert statuses(transport.written) == [200, 200, 404, 200]
    assert not transport.closed
    assert connection.node.counters.http[("events", 200)] == 2


async def test_a_publish_gets_the_exact_constant_answer_and_close_is_still_honoured() -> None:
    _, transport = connect(make_node())
    feed(transport, events_request("a"))
    assert transport.written == (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: 2\r\n\r\n{}")
    assert not transport.closed
    _, closing = connect(make_node())
    feed(closing, events_request("a").replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
    assert closing.written.endswith(b"content-length: 2\r\nconnection: close\r\n\r\n{}")
    assert closing.closed


async def test_a_request_split_at_every_byte_boundary_is_answered_once() -> None:
    request = events_request("split", "hello")
    for cut in range(1, len(request)):
        _, transport = connect(make_node())
        feed(transport, request[:cut])
        assert transport.written == b""
        feed(transport, request[cut:])
        assert statuses(transport.written) == [200], cut
        assert transport.written.endswith(b"\r\n\r\n{}")
    _, transport = connect(make_node())
    for byte in request:
        feed(transport, bytes([byte]))
    assert statuses(transport.written) == [200]


async def test_later_requests_wait_for_a_pending_hub_call_and_keep_their_order() -> None:
    hub = SlowHub()
    connection, transport = connect(make_node(hub))
    feed(transport, events_request("slow") + b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.written == b"" and connection.busy
    feed(transport, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.written == b""
    hub.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert statuses(transport.written) == [200, 200, 200]
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in transport.written.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"{}", b'{"health":"OK"}', b'{"ready":true}']
    assert not connection.busy and not transport.paused


async def test_a_pending_batch_publish_keeps_the_order_of_later_requests_too() -> None:
    hub = SlowHub()
    connection, transport = connect(make_node(hub))
    feed(transport, events_request("slow", batch=True) + b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.written == b"" and connection.busy
    hub.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in transport.written.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"{}", b'{"health":"OK"}']
    assert not connection.busy


async def test_a_flood_of_pipelined_requests_behind_a_pending_call_pauses_reading() -> None:
    hub = SlowHub()
    _, transport = connect(make_node(hub))
    feed(transport, events_request("slow") + b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n" * 40)
    assert transport.paused
    hub.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert statuses(transport.written) == [200] * 41
    assert not transport.paused


async def test_bytes_after_the_upgrade_in_the_same_packet_reach_the_websocket() -> None:
    node = make_node()
    _, transport = connect(node)
    feed(transport, upgrade_request() + masked_text('{"event":"pusher:ping","data":{}}'))
    await asyncio.sleep(0)  # the corker writes at the end of the loop iteration
    assert isinstance(transport.protocol, WebSocketConnection)
    written = transport.written
    assert written.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in written
    established = written.index(b"pusher:connection_established")
    assert written.index(b"pusher:pong") > established
    assert node.http == set() and len(node.websockets) == 1


async def test_an_upgrade_behind_a_pending_request_keeps_its_leftover_bytes() -> None:
    hub = SlowHub()
    _, transport = connect(make_node(hub))
    feed(transport, events_request("slow") + upgrade_request())
    feed(transport, masked_text('{"event":"pusher:ping","data":{}}'))
    assert transport.written == b""
    hub.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert statuses(transport.written) == [200, 101]
    assert b"pusher:pong" in transport.written


async def test_a_tls_client_hello_on_the_plain_port_is_closed_without_an_answer() -> None:
    _, transport = connect(make_node())
    feed(transport, bytes.fromhex("16030100c4010000c00303") + bytes(32))
    assert transport.closed and transport.written == b""


async def test_a_slow_websocket_client_is_dropped_at_max_write_buffer() -> None:
    node = make_node(max_write_buffer=1000)
    _, transport = connect(node)
    feed(transport, upgrade_request())
    await asyncio.sleep(0)
    assert not transport.aborted
    socket = transport.protocol
    assert isinstance(socket, WebSocketConnection)
    transport.buffered = 1001  # the client stopped reading
    socket.send_text('{"event":"e","data":"x"}')
    await asyncio.sleep(0)
    assert transport.aborted


async def test_malformed_requests_get_400_and_the_connection_closes() -> None:
    _, transport = connect(make_node())
    feed(transport, b"GET /up HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    assert statuses(transport.written) == [200, 400]
    assert transport.closed
    assert b"connection: close" in transport.written


async def test_oversized_bodies_get_413_before_the_body_arrives() -> None:
    node = make_node(max_request_size=100)
    _, transport = connect(node)
    feed(transport, b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
    assert statuses(transport.written) == [413] and transport.closed
    _, chunked = connect(node)
    feed(chunked, b"POST /apps/1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"64\r\n" + b"x" * 100 + b"\r\n10\r\n")
    feed(chunked, b"x" * 16)
    assert statuses(chunked.written) == [413] and chunked.closed
    assert node.counters.http[("invalid", 413)] == 2


async def test_oversized_headers_get_431() -> None:
    _, transport = connect(make_node())
    feed(transport, b"GET /up HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n")
    assert statuses(transport.written) == [431] and transport.closed


async def test_head_gets_headers_only_and_connection_close_is_honoured() -> None:
    _, transport = connect(make_node())
    feed(transport, b"HEAD /up HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.written.endswith(b"content-length: 15\r\n\r\n")
    feed(transport, b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert transport.written.endswith(b'connection: close\r\n\r\n{"health":"OK"}')
    assert transport.closed
    _, old = connect(make_node())
    feed(old, b"GET /up HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: one answer, closed
    assert statuses(old.written) == [200] and old.closed


async def test_an_invalid_upgrade_is_refused_with_a_json_error_and_closed() -> None:
    node = make_node()
    _, transport = connect(node)
    feed(transport, upgrade_request(version="8"))
    head, body = transport.written.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 426 ")
    assert b"sec-websocket-version: 13" in head and b"connection: close" in head
    assert json.loads(body) == {"error": "Only WebSocket version 13 is supported"}
    assert transport.closed and node.websockets == {}


async def test_a_foreign_upgrade_is_answered_as_plain_http_then_closed() -> None:
    _, transport = connect(make_node())
    feed(transport, b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
         b"PRI * HTTP/2.0")
    assert statuses(transport.written) == [200] and transport.closed



async def test_the_sweep_closes_idle_keep_alive_connections_but_not_busy_ones() -> None:
    hub = SlowHub()
    server = BroadcastServer(AppRegistry([APP]), hub=hub,
                             limits=ServerLimits(http_idle_timeout=0.05))
    await server.start("127.0.0.1", 0)
    try:
        node = server.node
        assert node is not None
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        idle_writer.write(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await idle_reader.readuntil(b"}")).startswith(b"HTTP/1.1 200 ")
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", server.port)
        busy_writer.write(events_request("slow"))  # held by the hub until released
        for _ in range(100):
            if any(c.busy for c in node.http):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        server.sweep()
        assert await asyncio.wait_for(idle_reader.read(), 2) == b""  # closed by the server
        assert len(node.http) == 1 and next(iter(node.http)).busy
        hub.release.set()
        assert (await asyncio.wait_for(busy_reader.readuntil(b"}"), 2)).startswith(
            b"HTTP/1.1 200 ")
        idle_writer.close()
        busy_writer.close()
    finally:
        await server.shutdown(0.1)
