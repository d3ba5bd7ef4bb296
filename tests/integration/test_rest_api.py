"""The Pusher HTTP API of a real broadcaster process, on the WebSocket's host:port."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.api_client import ApiClient, signed_query
from tests.support.processes import Broadcaster, running_broadcaster
from tests.support.pusher_client import PusherTestClient


def test_up(shared_broadcaster: Broadcaster) -> None:
    response = httpx.get(f"{shared_broadcaster.base_url}/up")
    assert response.status_code == 200
    assert response.json() == {"health": "OK"}


async def test_trigger_reaches_subscribers_verbatim(shared_broadcaster: Broadcaster,
                                                    api: ApiClient) -> None:
    async with PusherTestClient(shared_broadcaster.ws_url) as a, \
            PusherTestClient(shared_broadcaster.ws_url) as b:
        await a.subscribe("rest-one")
        await b.subscribe("rest-two")
        data = '{"text":"héllo <b>","n":[1,2]}'
        response = api.trigger(["rest-one", "rest-two"], "greeting", data)
        assert response.status_code == 200 and response.json() == {}
        for client, channel in ((a, "rest-one"), (b, "rest-two")):
            event = await client.expect("greeting")
            assert event == {"event": "greeting", "channel": channel, "data": data}


async def test_socket_id_is_excluded(shared_broadcaster: Broadcaster, api: ApiClient) -> None:
    async with PusherTestClient(shared_broadcaster.ws_url) as me, \
            PusherTestClient(shared_broadcaster.ws_url) as other:
        await me.subscribe("rest-others")
        await other.subscribe("rest-others")
        assert api.trigger("rest-others", "e", "{}", socket_id=me.socket_id).status_code == 200
        await other.expect("e")
        await me.expect_silence()


async def test_batch_events_and_info(shared_broadcaster: Broadcaster, api: ApiClient) -> None:
    server = shared_broadcaster
    async with PusherTestClient(server.ws_url) as client:
        await client.subscribe("presence-rest-batch", key=server.key, secret=server.secret,
                               channel_data='{"user_id":"u1"}')
        batch = {"batch": [
            {"name": "one", "channel": "presence-rest-batch", "data": "1",
             "info": "user_count,subscription_count"},
            {"name": "two", "channel": "rest-empty", "data": "2", "info": "subscription_count"},
        ]}
        response = api.request("POST", "batch_events", batch)
        assert response.status_code == 200, response.text
        assert response.json() == {"batch": [{"user_count": 1, "subscription_count": 1},
                                             {"subscription_count": 0}]}
        assert (await client.expect("one"))["data"] == "1"
        single = api.request("POST", "events", {"name": "three", "channel": "presence-rest-batch",
                                                "data": "3", "info": "user_count"})
        assert single.json() == {"channels": {"presence-rest-batch": {"user_count": 1}}}


async def test_channel_queries(shared_broadcaster: Broadcaster, api: ApiClient) -> None:
    server = shared_broadcaster
    creds: dict[str, Any] = {"key": server.key, "secret": server.secret}
    async with PusherTestClient(server.ws_url) as a, PusherTestClient(server.ws_url) as b:
        await a.subscribe("presence-q", channel_data='{"user_id":"1"}', **creds)
        await b.subscribe("presence-q", channel_data='{"user_id":"1"}', **creds)
        await a.subscribe("q-public")
        channels = api.request("GET", "channels").json()["channels"]
        assert {"presence-q", "q-public"} <= set(channels)
        assert channels["q-public"] == {}
        presence = api.request("GET", "channels",
                               params={"filter_by_prefix": "presence-", "info": "user_count"})
        assert presence.json()["channels"]["presence-q"] == {"user_count": 1}
        assert "q-public" not in presence.json()["channels"]
        bad = api.request("GET", "channels", params={"info": "user_count"})
        assert bad.status_code == 400

        info = api.request("GET", "channels/presence-q",
                           params={"info": "user_count,subscription_count"})
        assert info.json() == {"occupied": True, "user_count": 1, "subscription_count": 2}
        assert api.request("GET", "channels/nobody-here").json() == {"occupied": False}
        assert api.request("GET", "channels/q-public",
                           params={"info": "user_count"}).status_code == 400
        users = api.request("GET", "channels/presence-q/users")
        assert users.json() == {"users": [{"id": "1"}]}
        assert api.request("GET", "channels/q-public/users").status_code == 400
        assert api.request("GET", "connections").json()["connections"] >= 2


def test_errors_have_pusher_status_codes(shared_broadcaster: Broadcaster,
                                          api: ApiClient) -> None:
    ok_body = {"name": "e", "channel": "c", "data": "{}"}
    assert api.request("POST", "events", ok_body, timestamp=int(time.time()) - 700
                       ).status_code == 401
    wrong = ApiClient(shared_broadcaster.base_url, shared_broadcaster.app_id,
                      shared_broadcaster.key, "not-the-secret")
    response = wrong.request("POST", "events", ok_body)
    wrong.close()
    assert response.status_code == 401 and "signature" in response.json()["error"].lower()
    unknown = ApiClient(shared_broadcaster.base_url, "999", shared_broadcaster.key,
                        shared_broadcaster.secret)
    assert unknown.request("POST", "events", ok_body).status_code == 404
    unknown.close()
    big = {"name": "e", "channel": "c", "data": "x" * 10_241}
    assert api.request("POST", "events", big).status_code == 413
    assert api.request("POST", "events", b"{not json").status_code == 400
    assert api.request("GET", "events").status_code == 405
    missing = api.http.post(f"/apps/{api.app_id}/events", content=b"{}")
    assert missing.status_code == 401
    assert api.http.get("/nowhere").status_code == 404
    assert api.request("POST", "events", ok_body).status_code == 200  # connection still fine


def raw_exchange(server: Broadcaster, payload: bytes, expect_responses: int) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(payload)
        received = b""
        while received.count(b"HTTP/1.1 ") < expect_responses or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_keep_alive_and_pipelining(shared_broadcaster: Broadcaster) -> None:
    server = shared_broadcaster
    requests = b""
    for n in range(3):
        path = f"/apps/{server.app_id}/events"
        body = json.dumps({"name": "e", "channel": "pipe", "data": str(n)}).encode()
        query = signed_query(server.key, server.secret, "POST", path, body)
        requests += (f"POST {path}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    received = raw_exchange(server, requests, 3)
    assert received.count(b"HTTP/1.1 200 ") == 3


def test_garbage_http_gets_400_and_the_server_lives_on(shared_broadcaster: Broadcaster) -> None:
    received = raw_exchange(shared_broadcaster, b"NOT HTTP AT ALL\r\n\r\n", 1)
    assert received.startswith(b"HTTP/1.1 400 ")
    oversized = raw_exchange(
        shared_broadcaster,
        b"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 1)
    assert oversized.startswith(b"HTTP/1.1 413 ")
    assert httpx.get(f"{shared_broadcaster.base_url}/up").status_code == 200


def test_tls_handshake_on_the_plain_port_is_closed_at_once(shared_broadcaster: Broadcaster) -> None:
    client_hello = bytes.fromhex("16030100c4010000c00303") + bytes(32)
    with socket.create_connection((shared_broadcaster.host, shared_broadcaster.port),
                                  timeout=5) as sock:
        sock.sendall(client_hello)
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed without an answer
        assert time.monotonic() - started < 2


def test_invalid_websocket_upgrade_gets_an_http_error(shared_broadcaster: Broadcaster) -> None:
    request = (f"GET /app/{shared_broadcaster.key}?protocol=7 HTTP/1.1\r\nHost: x\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
    received = raw_exchange(shared_broadcaster, request, 1)
    assert received.startswith(b"HTTP/1.1 426 ")
    assert b"sec-websocket-version: 13" in received.lower()
    assert httpx.get(f"{shared_broadcaster.base_url}/up").status_code == 200


async def test_the_server_runs_on_the_standard_event_loop_too(tmp_path: Path) -> None:
    """uvloop is an optional speedup: with it switched off, HTTP and WebSockets still work."""
    with running_broadcaster(tmp_path, extra_env={"BROADCASTER_EVENT_LOOP": "asyncio"}) as server:
        api = ApiClient(server.base_url, server.app_id, server.key, server.secret)
        try:
            async with PusherTestClient(server.ws_url) as client:
                await client.subscribe("plain-loop")
                assert api.trigger("plain-loop", "e", "x").status_code == 200
                assert (await client.expect("e"))["data"] == "x"
            pipelined = b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n" * 2
            assert raw_exchange(server, pipelined, 2).count(b"HTTP/1.1 200 ") == 2
        finally:
            api.close()
        assert server.log_path is not None
        assert 'event_loop="asyncio"' in server.log_path.read_text()
