"""The in-process hub, with recording subscribers in place of sockets."""

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from broadcaster.hub.memory import MemoryHub
from broadcaster.protocol.apps import App
from broadcaster.protocol.errors import PusherError, SubscriptionError
from broadcaster.protocol.presence import Member

APP = App(id="1", key="k", secret="s", max_presence_members=2)
OTHER_APP = App(id="2", key="k2", secret="s2")


class Recorder:
    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id
        self.frames: list[bytes] = []
        self.closed_with: list[int] = []

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close_with(self, error: PusherError) -> None:
        self.closed_with.append(error.code)

    def events(self) -> list[dict[str, object]]:
        return [json.loads(f) for f in self.frames]


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def hub() -> MemoryHub:
    encoded: list[str] = []

    def encode(text: str) -> bytes:
        encoded.append(text)
        return text.encode()

    instance = MemoryHub(encode)
    instance.encoded = encoded  # type: ignore[attr-defined]
    return instance


def test_publish_encodes_once_and_skips_the_excluded_socket() -> None:
    h = hub()
    subs = [Recorder(f"{i}.1") for i in range(5)]
    for sub in subs:
        run(h.join(APP, "news", sub, None))
    run(h.publish(APP, "news", '{"event":"e"}', except_socket_id="2.1"))
    assert h.encoded == ['{"event":"e"}']  # type: ignore[attr-defined]
    assert [len(s.frames) for s in subs] == [1, 1, 0, 1, 1]
    run(h.publish(OTHER_APP, "news", "{}"))  # apps are isolated
    assert [len(s.frames) for s in subs] == [1, 1, 0, 1, 1]


def test_presence_announces_first_join_and_last_leave_to_others_only() -> None:
    h = hub()
    a1, a2, b = Recorder("1.1"), Recorder("1.2"), Recorder("2.1")
    ann, bob = Member("ann", {"n": 1}), Member("bob", None)
    assert run(h.join(APP, "presence-r", b, bob)) == {"bob": None}
    assert run(h.join(APP, "presence-r", a1, ann)) == {"bob": None, "ann": {"n": 1}}
    assert [e["event"] for e in b.events()] == ["pusher_internal:member_added"]
    assert a1.frames == []  # never told about itself
    run(h.join(APP, "presence-r", a2, ann))  # second tab: silent
    assert len(b.frames) == 1
    run(h.leave(APP, "presence-r", a1, ann))
    assert len(b.frames) == 1
    run(h.leave(APP, "presence-r", a2, ann))
    removed = b.events()[-1]
    assert removed["event"] == "pusher_internal:member_removed"
    assert json.loads(removed["data"]) == {"user_id": "ann"}  # type: ignore[arg-type]
    assert run(h.users(APP, "presence-r")) == ["bob"]


def test_presence_member_limit() -> None:
    h = hub()
    run(h.join(APP, "presence-r", Recorder("1.1"), Member("1", None)))
    run(h.join(APP, "presence-r", Recorder("2.1"), Member("2", None)))
    with pytest.raises(SubscriptionError):
        run(h.join(APP, "presence-r", Recorder("3.1"), Member("3", None)))
    # an existing user may still open another tab
    run(h.join(APP, "presence-r", Recorder("1.2"), Member("1", None)))
    assert run(h.channel(APP, "presence-r")).user_count == 2


def test_channel_stats_and_vacating() -> None:
    h = hub()
    sub = Recorder("1.1")
    run(h.join(APP, "presence-a", sub, Member("1", None)))
    run(h.join(APP, "news", sub, None))
    run(h.join(APP, "news", Recorder("2.2"), None))
    stats = run(h.channels(APP))
    assert set(stats) == {"presence-a", "news"}
    assert stats["news"].subscription_count == 2 and stats["news"].user_count is None
    assert set(run(h.channels(APP, "presence-"))) == {"presence-a"}
    run(h.leave(APP, "presence-a", sub, Member("1", None)))
    assert run(h.channel(APP, "presence-a")).occupied is False
    assert "presence-a" not in run(h.channels(APP))


def test_connection_counts() -> None:
    h = hub()
    a, b = Recorder("1.1"), Recorder("2.2")
    assert run(h.connect(APP, a)) == 1
    assert run(h.connect(APP, b)) == 2
    run(h.disconnect(APP, a))
    assert run(h.connection_count(APP)) == 1
    assert run(h.connection_count(OTHER_APP)) == 0


def test_lifecycle_events_fire_on_first_and_last_subscriber_and_member() -> None:
    instance = hub()
    seen: list[tuple[str, dict[str, object]]] = []
    instance.observer = lambda app, event: seen.append((app.id, event))
    a, b = Recorder("1.1"), Recorder("1.2")
    alice = Member("alice", None)

    async def scenario() -> None:
        await instance.join(APP, "presence-room", a, alice)
        await instance.join(APP, "presence-room", b, alice)
        await instance.leave(APP, "presence-room", a, alice)
        await instance.leave(APP, "presence-room", b, alice)
        await instance.join(APP, "news", a, None)
        await instance.leave(APP, "news", a, None)

    run(scenario())
    assert [event for _, event in seen] == [
        {"name": "channel_occupied", "channel": "presence-room"},
        {"name": "member_added", "channel": "presence-room", "user_id": "alice"},
        {"name": "member_removed", "channel": "presence-room", "user_id": "alice"},
        {"name": "channel_vacated", "channel": "presence-room"},
        {"name": "channel_occupied", "channel": "news"},
        {"name": "channel_vacated", "channel": "news"},
    ]
    assert {app_id for app_id, _ in seen} == {"1"}
