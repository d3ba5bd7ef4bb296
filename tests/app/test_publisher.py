"""The Pusher HTTP client and the chunk relay, against a real broadcaster and WebSocket client."""

from __future__ import annotations

import asyncio
import time

from app.config import BroadcasterSettings
from app.services.publisher import PusherPublisher
from app.services.relay import ChunkRelay
from tests.app.client import Listener
from tests.support.processes import Broadcaster, free_port


def _settings(server: Broadcaster, secret: str | None = None,
              port: int | None = None) -> BroadcasterSettings:
    return BroadcasterSettings(server.app_id, server.key, secret or server.secret,
                               server.host, port or server.port, "http")


async def test_events_reach_subscribers_except_the_excluded_socket(
    shared_broadcaster: Broadcaster,
) -> None:
    publisher = PusherPublisher(_settings(shared_broadcaster))
    sender, other = await Listener.open(shared_broadcaster), await Listener.open(
        shared_broadcaster)
    for listener in (sender, other):
        await listener.ws.send('{"event":"pusher:subscribe","data":{"channel":"pub-events"}}')
        await listener.wait_for(lambda e: e["event"].endswith("subscription_succeeded"))
    assert await publisher.trigger(["pub-events"], "greeting", {"text": "hé"},
                                   socket_id=sender.socket_id)
    assert await publisher.trigger(["pub-events"], "greeting", {"text": "all"},
                                   socket_id="not-a-socket-id")
    event = await other.wait_for(lambda e: e["event"] == "greeting")
    assert event["data"] == {"text": "hé"} and event["channel"] == "pub-events"
    await sender.wait_for(lambda e: e["event"] == "greeting")
    assert [e["data"]["text"] for e in sender.named("greeting")] == ["all"]
    assert publisher.stats.published == 2 and publisher.stats.failed == 0
    await publisher.aclose()
    await sender.close()
    await other.close()


async def test_refusals_and_unreachable_servers_fail_quietly_and_boundedly(
    shared_broadcaster: Broadcaster,
) -> None:
    wrong = PusherPublisher(_settings(shared_broadcaster, secret="wrong-secret"), attempts=3)
    assert await wrong.trigger(["c"], "e", {}) is False
    assert wrong.stats.failed == 1 and wrong.stats.retries == 0  # a 401 is not retried
    assert "401" in (wrong.stats.last_error or "")
    nowhere = PusherPublisher(_settings(shared_broadcaster, port=free_port()), attempts=3,
                              retry_backoff_seconds=0.01)
    started = time.monotonic()
    assert await nowhere.trigger(["c"], "e", {}) is False
    assert time.monotonic() - started < 2
    assert nowhere.stats.failed == 1 and nowhere.stats.retries == 2
    await wrong.aclose()
    await nowhere.aclose()


async def test_relay_coalesces_numbers_and_saves_chunks(shared_broadcaster: Broadcaster) -> None:
    publisher = PusherPublisher(_settings(shared_broadcaster))
    listener = await Listener.open(shared_broadcaster)
    await listener.ws.send('{"event":"pusher:subscribe","data":{"channel":"relay-test"}}')
    await listener.wait_for(lambda e: e["event"].endswith("subscription_succeeded"))
    saved: list[tuple[str, int]] = []

    async def save(content: str, seq: int) -> None:
        saved.append((content, seq))

    relay = ChunkRelay(message_id=9, channel=lambda: "relay-test", publisher=publisher,
                       save_progress=save, interval_seconds=0.03, save_interval_seconds=0.1)
    relay.start()
    deltas = [f"d{i};" for i in range(200)]
    started = time.monotonic()
    for delta in deltas:
        relay.feed(delta)
        await asyncio.sleep(0.002)
    content, seq = await relay.close()
    elapsed = time.monotonic() - started
    assert content == "".join(deltas)
    await listener.wait_for(lambda e: e["event"] == "message.chunk" and e["data"]["seq"] == seq)
    chunks = listener.chunks(9)
    assert [c["seq"] for c in chunks] == list(range(1, seq + 1))
    assert "".join(c["chunk"] for c in chunks) == content
    assert chunks[0]["chunk"] == deltas[0]  # the first delta goes out at once
    assert seq < len(deltas) / 3  # coalesced...
    assert seq <= elapsed / 0.03 + 2  # ...to at most one publish per interval
    assert saved and all(content.startswith(text) for text, _ in saved)
    for text, number in saved:
        assert "".join(c["chunk"] for c in chunks[:number]) == text
    await publisher.aclose()
    await listener.close()
