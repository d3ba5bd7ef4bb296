"""The Pusher HTTP client and the chunk relay, against a real broadcaster and WebSocket client."""

from __future__ import annotations

import asyncio
import time

from app.config import BroadcasterSettings
from app.services.publisher import PusherPublisher
from app.services.relay import ChunkRelay, RelayClock
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

    clock = RelayClock(0.03)
    relay = ChunkRelay(message_id=9, channel=lambda: "relay-test", publisher=publisher,
                       clock=clock, save_progress=save, save_interval_seconds=0.1)
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


async def test_relays_share_ticks_and_split_long_text_in_order(
    shared_broadcaster: Broadcaster,
) -> None:
    publisher = PusherPublisher(_settings(shared_broadcaster))
    listener = await Listener.open(shared_broadcaster)
    await listener.ws.send('{"event":"pusher:subscribe","data":{"channel":"relay-clock"}}')
    await listener.wait_for(lambda e: e["event"].endswith("subscription_succeeded"))

    async def save(content: str, seq: int) -> None:
        return None

    clock = RelayClock(0.05)
    relays = [ChunkRelay(message_id=100 + i, channel=lambda: "relay-clock", publisher=publisher,
                         clock=clock, save_progress=save, save_interval_seconds=60,
                         max_chunk_chars=4000) for i in range(20)]
    for relay in relays:
        relay.feed("first;")  # each reply's first words go out at once
    await listener.wait_for(lambda e: sum(1 for x in listener.events
                                          if x["event"] == "message.chunk") == 20)
    before = publisher.stats.requests
    for relay in relays:
        relay.feed("second;")
    await listener.wait_for(lambda e: sum(1 for x in listener.events
                                          if x["event"] == "message.chunk") == 40)
    # The second chunks of all 20 replies left on one tick: two batches of 10, not 20 requests.
    assert publisher.stats.requests - before <= 2
    long_text = "".join(f"{i:05d}" for i in range(2000))  # 10,000 characters
    relays[0].feed(long_text)
    results = [await relay.close() for relay in relays]
    assert results[0] == ("first;second;" + long_text, 5)
    assert all(result == ("first;second;", 2) for result in results[1:])
    await listener.wait_for(lambda e: e["event"] == "message.chunk" and e["data"]["seq"] == 5)
    chunks = listener.chunks(100)
    # Split into pieces of at most 4,000 characters, sent one after another, in order.
    assert [c["seq"] for c in chunks] == [1, 2, 3, 4, 5]
    assert [len(c["chunk"]) for c in chunks[2:]] == [4000, 4000, 2000]
    assert "".join(c["chunk"] for c in chunks) == results[0][0]
    await clock.aclose()
    await publisher.aclose()
    await listener.close()
