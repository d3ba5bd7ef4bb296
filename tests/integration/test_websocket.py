"""The WebSocket side of a real broadcaster process, with real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.api_client import ApiClient
from tests.support.processes import Broadcaster, running_broadcaster
from tests.support.pusher_client import PusherTestClient


def ws_url(server: Broadcaster, key: str | None = None, query: str = "protocol=7") -> str:
    return f"ws://{server.host}:{server.port}/app/{key or server.key}?{query}"


async def test_connection_established(shared_broadcaster: Broadcaster) -> None:
    async with PusherTestClient(shared_broadcaster.ws_url) as client:
        assert re.fullmatch(r"\d+\.\d+", client.socket_id)


async def test_socket_ids_are_unique(shared_broadcaster: Broadcaster) -> None:
    clients = [PusherTestClient(shared_broadcaster.ws_url) for _ in range(20)]
    for client in clients:
        await client.open()
    assert len({c.socket_id for c in clients}) == 20
    for client in clients:
        await client.close()


async def expect_refusal(url: str, code: int, origin: str | None = None) -> None:
    client = PusherTestClient(url, origin=origin)
    first = await client.open(expect_established=False)
    assert first["event"] == "pusher:error"
    assert json.loads(first["data"])["code"] == code
    assert client.ws is not None
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(client.ws.recv(), 5)
    assert client.ws.close_code == code


async def test_unknown_key_missing_and_unsupported_protocol(
    shared_broadcaster: Broadcaster,
) -> None:
    await expect_refusal(ws_url(shared_broadcaster, key="nope"), 4001)
    await expect_refusal(ws_url(shared_broadcaster, query="client=js"), 4008)
    await expect_refusal(ws_url(shared_broadcaster, query="protocol=99"), 4007)


async def test_allowed_origins_and_connection_quota(tmp_path: Path) -> None:
    env = {"REVERB_APP_ALLOWED_ORIGINS": "good.test,*.ok.test", "REVERB_APP_MAX_CONNECTIONS": "2"}
    with running_broadcaster(tmp_path, extra_env=env) as server:
        await expect_refusal(server.ws_url, 4009, origin="https://evil.test")
        await expect_refusal(server.ws_url, 4009)  # no Origin while origins are restricted
        first = PusherTestClient(server.ws_url, origin="https://good.test")
        second = PusherTestClient(server.ws_url, origin="http://app.ok.test:3000")
        await first.open()
        await second.open()
        await expect_refusal(server.ws_url, 4004, origin="https://good.test")
        await first.close()
        await asyncio.sleep(0.2)
        third = PusherTestClient(server.ws_url, origin="https://good.test")
        await third.open()  # a slot was freed
        await second.close()
        await third.close()


async def test_ping_pong_and_protocol_pings(shared_broadcaster: Broadcaster) -> None:
    async with PusherTestClient(shared_broadcaster.ws_url) as client:
        await client.send({"event": "pusher:ping", "data": {}})
        pong = await client.expect("pusher:pong")
        assert pong["data"] == "{}"
        assert client.ws is not None
        latency = await asyncio.wait_for(await client.ws.ping(), 5)
        assert latency >= 0


async def test_public_private_presence_flow(shared_broadcaster: Broadcaster,
                                            api: ApiClient) -> None:
    server = shared_broadcaster
    creds: dict[str, Any] = {"key": server.key, "secret": server.secret}
    async with PusherTestClient(server.ws_url) as ann, PusherTestClient(server.ws_url) as bob:
        await ann.subscribe("flow-public")
        await ann.subscribe("private-flow", **creds)
        refused = await bob.subscribe("private-flow", key=server.key, secret="wrong",
                                      expect_ok=False)
        assert refused["event"] == "pusher:subscription_error"
        assert refused["channel"] == "private-flow"
        assert refused["data"]["status"] == 401

        ann_data = json.dumps({"user_id": "ann", "user_info": {"name": "Ann"}})
        ok = await ann.subscribe("presence-flow", channel_data=ann_data, **creds)
        assert json.loads(ok["data"])["presence"] == {
            "ids": ["ann"], "hash": {"ann": {"name": "Ann"}}, "count": 1}
        bob_data = json.dumps({"user_id": "bob", "user_info": {"name": "Bob"}})
        ok = await bob.subscribe("presence-flow", channel_data=bob_data, **creds)
        assert json.loads(ok["data"])["presence"]["count"] == 2
        added = await ann.expect("pusher_internal:member_added")
        assert json.loads(added["data"]) == {"user_id": "bob", "user_info": {"name": "Bob"}}

        assert api.trigger("private-flow", "secret", {"n": 1}).status_code == 200
        event = await ann.expect("secret")
        assert event["channel"] == "private-flow" and json.loads(event["data"]) == {"n": 1}
        await bob.expect_silence()  # refused subscriptions get no events

        await bob.send({"event": "pusher:unsubscribe", "data": {"channel": "presence-flow"}})
        removed = await ann.expect("pusher_internal:member_removed")
        assert json.loads(removed["data"]) == {"user_id": "bob"}


async def test_same_user_in_two_tabs_is_one_member(shared_broadcaster: Broadcaster) -> None:
    server = shared_broadcaster
    creds: dict[str, Any] = {"key": server.key, "secret": server.secret}
    data = json.dumps({"user_id": "tabby"})
    async with PusherTestClient(server.ws_url) as watcher:
        await watcher.subscribe("presence-tabs", channel_data='{"user_id":"w"}', **creds)
        tab1, tab2 = PusherTestClient(server.ws_url), PusherTestClient(server.ws_url)
        await tab1.open()
        await tab2.open()
        await tab1.subscribe("presence-tabs", channel_data=data, **creds)
        await watcher.expect("pusher_internal:member_added")
        ok = await tab2.subscribe("presence-tabs", channel_data=data, **creds)
        assert json.loads(ok["data"])["presence"]["count"] == 2
        await watcher.expect_silence()
        await tab1.close()
        await watcher.expect_silence()
        await tab2.close()  # last tab gone: now removed, also on an abrupt disconnect
        removed = await watcher.expect("pusher_internal:member_removed")
        assert json.loads(removed["data"]) == {"user_id": "tabby"}


async def test_client_events(shared_broadcaster: Broadcaster) -> None:
    server = shared_broadcaster
    creds: dict[str, Any] = {"key": server.key, "secret": server.secret}
    async with PusherTestClient(server.ws_url) as ann, PusherTestClient(server.ws_url) as bob:
        await ann.subscribe("presence-whisper", channel_data='{"user_id":"ann"}', **creds)
        await bob.subscribe("presence-whisper", channel_data='{"user_id":"bob"}', **creds)
        await ann.expect("pusher_internal:member_added")
        await ann.send({"event": "client-typing", "channel": "presence-whisper",
                        "data": {"typing": True}})
        got = await bob.expect("client-typing")
        assert got == {"event": "client-typing", "channel": "presence-whisper",
                       "data": {"typing": True}, "user_id": "ann"}
        await ann.expect_silence()  # never echoed to the sender
        await asyncio.sleep(1.0)  # a fresh one-second window for the rate limit
        for _ in range(10):
            await ann.send({"event": "client-n", "channel": "presence-whisper", "data": {}})
        await ann.send({"event": "client-n", "channel": "presence-whisper", "data": {}})
        error = await ann.expect("pusher:error")
        assert json.loads(error["data"])["code"] == 4301
        for _ in range(10):
            await bob.expect("client-n")
        await bob.expect_silence()


async def test_malformed_frames_do_not_hurt_anyone(shared_broadcaster: Broadcaster,
                                                   api: ApiClient) -> None:
    async with PusherTestClient(shared_broadcaster.ws_url) as victim, \
            PusherTestClient(shared_broadcaster.ws_url) as bystander:
        await bystander.subscribe("robust")
        assert victim.ws is not None
        for bad in ["{", "[]", '{"event":1}', '{"event":"pusher:subscribe","data":5}',
                    "\u0000" * 10, '{"event":"pusher:subscribe","data":{"channel":"' +
                    "x" * 300 + '"}}', "x" * 20_000]:
            await victim.send(bad)
            reply = await victim.next_event()
            assert reply["event"] in ("pusher:error", "pusher:subscription_error"), reply
        await victim.ws.send(b"\x00\x01binary")
        reply = await victim.expect("pusher:error")
        assert "Binary" in json.loads(reply["data"])["message"]
        api.trigger("robust", "still-here", {"ok": True})
        assert (await bystander.expect("still-here"))["channel"] == "robust"
        await victim.send({"event": "pusher:ping", "data": {}})
        await victim.expect("pusher:pong")


async def test_fragmented_message_is_assembled(shared_broadcaster: Broadcaster) -> None:
    async with PusherTestClient(shared_broadcaster.ws_url) as client:
        assert client.ws is not None
        parts = ['{"event":"pusher:sub', 'scribe","data":{"chan', 'nel":"frag"}}']
        await client.ws.send(iter(parts))
        ok = await client.expect("pusher_internal:subscription_succeeded")
        assert ok["channel"] == "frag"


async def test_huge_frame_closes_with_1009(shared_broadcaster: Broadcaster) -> None:
    async with connect(shared_broadcaster.ws_url, compression=None, max_size=None) as ws:
        await ws.recv()
        # The server refuses the frame from its header, so the close may reach us while we
        # are still sending the payload: either side of the exchange may notice first.
        with pytest.raises(ConnectionClosed):
            await ws.send("x" * 2_000_000)
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009


async def test_silent_client_is_pinged_then_closed_4201(tmp_path: Path) -> None:
    env = {"REVERB_APP_PING_INTERVAL": "1", "REVERB_APP_PONG_TIMEOUT": "1"}
    with running_broadcaster(tmp_path, extra_env=env) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            f"GET /app/{server.key}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        received = b""
        # Never answer: expect a pusher:ping, then pusher:error 4201 and a 4201 close frame.
        async with asyncio.timeout(10):
            while b"\x88" not in received.split(b"4201", 1)[-1][:4] or b"4201" not in received:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                received += chunk
        assert b"pusher:ping" in received
        assert b'\\"code\\":4201' in received or b'"code": 4201' in received.replace(b"\\", b"")
        close_at = received.rindex(b"\x88")
        assert int.from_bytes(received[close_at + 2:close_at + 4], "big") == 4201
        writer.close()


async def test_answering_pings_keeps_the_connection(tmp_path: Path) -> None:
    env = {"REVERB_APP_PING_INTERVAL": "1", "REVERB_APP_PONG_TIMEOUT": "1"}
    with running_broadcaster(tmp_path, extra_env=env) as server:
        async with PusherTestClient(server.ws_url) as client:
            for _ in range(3):
                ping = await client.expect("pusher:ping", timeout=5)
                assert ping["event"] == "pusher:ping"
                await client.send({"event": "pusher:pong", "data": {}})
            assert client.ws is not None and client.ws.close_code is None


async def test_disabled_app_refuses_sockets_and_api_calls(tmp_path: Path) -> None:
    with running_broadcaster(tmp_path, extra_env={"REVERB_APP_ENABLED": "false"}) as server:
        await expect_refusal(server.ws_url, 4003)
        api = ApiClient(server.base_url, server.app_id, server.key, server.secret)
        response = api.trigger("any", "e", "{}")
        api.close()
        assert response.status_code == 403
        assert response.json() == {"error": "Application is disabled"}


async def test_encrypted_channels_need_auth_and_relay_opaque_payloads(
    shared_broadcaster: Broadcaster, api: ApiClient
) -> None:
    server = shared_broadcaster
    async with PusherTestClient(server.ws_url) as client, \
            PusherTestClient(server.ws_url) as intruder:
        refused = await intruder.subscribe("private-encrypted-vault", expect_ok=False)
        assert refused["event"] == "pusher:subscription_error"
        await client.subscribe("private-encrypted-vault", key=server.key, secret=server.secret)
        sealed = json.dumps({"nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"})
        assert api.trigger("private-encrypted-vault", "sealed", sealed).status_code == 200
        event = await client.expect("sealed")
        assert event["data"] == sealed
        await intruder.expect_silence()


async def test_refused_client_that_ignores_the_close_frame_is_dropped(
    shared_broadcaster: Broadcaster,
) -> None:
    server = shared_broadcaster
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"GET /app/unknown-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    received = b""
    # Never answer the close frame: the server gives up after its close timeout (5 s).
    async with asyncio.timeout(15):
        while chunk := await reader.read(4096):
            received += chunk
    assert b"4001" in received.replace(b"\\", b"")
    writer.close()
