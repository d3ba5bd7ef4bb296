"""Cache channels, subscription counts and signed-in users in the in-process hub."""

import json
from typing import Any

from broadcaster.hub.memory import MemoryHub
from broadcaster.protocol.apps import App
from broadcaster.protocol.errors import UserTerminated
from broadcaster.protocol.presence import Member
from broadcaster.protocol.users import SignedInUser
from tests.unit.test_memory_hub import Recorder, run

APP = App(id="1", key="k", secret="s", cache_ttl=60)
COUNTED = App(id="2", key="k2", secret="s2", subscription_count=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_hub() -> tuple[MemoryHub, Clock, list[tuple[str, dict[str, Any]]]]:
    clock = Clock()
    h = MemoryHub(lambda text: text.encode(), clock)
    seen: list[tuple[str, dict[str, Any]]] = []
    h.observer = lambda app, event: seen.append((app.id, event))
    return h, clock, seen


def names(seen: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [event["name"] for _, event in seen]


def test_cache_miss_then_replay_of_the_last_event_unchanged() -> None:
    h, _, seen = make_hub()
    first = Recorder("1.1")
    run(h.join(APP, "cache-x", first, None))
    run(h.subscribed(APP, "cache-x", first))
    assert first.events() == [{"event": "pusher:cache_miss", "channel": "cache-x"}]
    assert ("1", {"name": "cache_miss", "channel": "cache-x"}) in seen
    run(h.publish(APP, "cache-x", '{"event":"a","channel":"cache-x","data":"1"}'))
    run(h.publish(APP, "cache-x", '{"event":"b","channel":"cache-x","data":"2"}'))
    late = Recorder("2.1")
    run(h.join(APP, "cache-x", late, None))
    run(h.subscribed(APP, "cache-x", late))
    assert late.frames == [b'{"event":"b","channel":"cache-x","data":"2"}']
    assert names(seen).count("cache_miss") == 1


def test_cache_is_kept_with_nobody_subscribed_and_expires_after_the_ttl() -> None:
    h, clock, _ = make_hub()
    run(h.publish(APP, "private-cache-x", "E"))  # nobody subscribed: still cached
    cached = run(h.cached_event(APP, "private-cache-x"))
    assert cached is not None and cached.text == "E" and cached.ttl == 60
    clock.now += 59
    assert run(h.cached_event(APP, "private-cache-x")) is not None
    clock.now += 1
    assert run(h.cached_event(APP, "private-cache-x")) is None
    sub = Recorder("1.1")
    run(h.join(APP, "private-cache-x", sub, None))
    run(h.subscribed(APP, "private-cache-x", sub))
    assert sub.events()[0]["event"] == "pusher:cache_miss"


def test_expired_cache_entries_are_swept_by_housekeeping() -> None:
    h, clock, _ = make_hub()
    run(h.publish(APP, "cache-a", "A"))
    clock.now += 61
    run(h.housekeeping())
    assert h._cache == {}


def test_non_cache_channels_are_not_cached_and_get_no_cache_frames() -> None:
    h, _, seen = make_hub()
    run(h.publish(APP, "news", "E"))
    sub = Recorder("1.1")
    run(h.join(APP, "news", sub, None))
    run(h.subscribed(APP, "news", sub))
    assert sub.frames == [] and "cache_miss" not in names(seen)
    assert run(h.cached_event(APP, "news")) is None


def counts(sub: Recorder) -> list[int]:
    return [json.loads(str(e["data"]))["subscription_count"] for e in sub.events()
            if e["event"] == "pusher_internal:subscription_count"]


def test_subscription_count_on_every_change_when_enabled() -> None:
    h, _, seen = make_hub()
    a, b = Recorder("1.1"), Recorder("2.1")
    for sub in (a, b):
        run(h.join(COUNTED, "room", sub, None))
        run(h.subscribed(COUNTED, "room", sub))
    run(h.leave(COUNTED, "room", b, None))
    assert counts(a) == [1, 2, 1]
    assert counts(b) == [2]
    assert [e["subscription_count"] for _, e in seen if e["name"] == "subscription_count"] == [
        1, 2, 1]


def test_no_subscription_count_when_off_or_on_presence() -> None:
    h, _, seen = make_hub()
    a = Recorder("1.1")
    run(h.join(APP, "room", a, None))
    run(h.subscribed(APP, "room", a))
    run(h.join(COUNTED, "presence-room", a, Member("1", None)))
    run(h.subscribed(COUNTED, "presence-room", a))
    assert counts(a) == [] and "subscription_count" not in names(seen)


def test_subscription_count_is_throttled_above_100() -> None:
    h, clock, _ = make_hub()
    subs = [Recorder(f"{i}.1") for i in range(103)]
    for sub in subs[:101]:
        run(h.join(COUNTED, "big", sub, None))
        run(h.subscribed(COUNTED, "big", sub))
    # Up to 100 every change is sent; the 101st comes right after the last send: held back.
    assert counts(subs[0]) == list(range(1, 101))
    clock.now += 1
    for sub in subs[101:]:
        run(h.join(COUNTED, "big", sub, None))
        run(h.subscribed(COUNTED, "big", sub))
    run(h.housekeeping())
    assert counts(subs[0])[-1] == 100  # still within 5 s of the last send
    clock.now += 4
    run(h.housekeeping())
    assert counts(subs[0])[-1] == 103 and counts(subs[102]) == [103]
    run(h.housekeeping())
    assert counts(subs[0]).count(103) == 1  # nothing pending any more
    run(h.leave(COUNTED, "big", subs[102], None))
    assert counts(subs[0])[-1] == 103  # throttled again
    clock.now += 5
    run(h.housekeeping())
    assert counts(subs[0])[-1] == 102


def user(uid: str, *watch: str) -> SignedInUser:
    return SignedInUser(uid, json.dumps({"id": uid}), tuple(watch))


def watch_events(sub: Recorder) -> list[dict[str, Any]]:
    return [json.loads(str(e["data"]))["events"][0] for e in sub.events()
            if e["event"] == "pusher_internal:watchlist_events"]


def test_watchlist_online_on_first_connection_and_offline_on_last() -> None:
    h, _, _ = make_hub()
    watcher, b1, b2 = Recorder("1.1"), Recorder("2.1"), Recorder("2.2")
    assert run(h.sign_in(APP, b1, user("bob"))) == []
    assert run(h.sign_in(APP, watcher, user("ann", "bob", "carl"))) == ["bob"]
    run(h.sign_in(APP, b2, user("bob")))  # second connection: no news
    assert watch_events(watcher) == []
    run(h.sign_out(APP, b1, user("bob")))
    assert watch_events(watcher) == []
    run(h.sign_out(APP, b2, user("bob")))
    assert watch_events(watcher) == [{"name": "offline", "user_ids": ["bob"]}]
    run(h.sign_in(APP, b1, user("bob")))
    assert watch_events(watcher)[-1] == {"name": "online", "user_ids": ["bob"]}
    run(h.sign_out(APP, watcher, user("ann", "bob", "carl")))
    run(h.sign_out(APP, b1, user("bob")))
    assert len(watch_events(watcher)) == 2  # no longer watching


def test_publish_to_user_reaches_every_signed_in_connection_only() -> None:
    h, _, _ = make_hub()
    b1, b2, other, subscriber = Recorder("2.1"), Recorder("2.2"), Recorder("3.1"), Recorder("4.1")
    run(h.sign_in(APP, b1, user("bob")))
    run(h.sign_in(APP, b2, user("bob")))
    run(h.sign_in(APP, other, user("carl")))
    run(h.join(APP, "#server-to-user-bob", subscriber, None))  # not signed in as bob
    run(h.publish(APP, "#server-to-user-bob", "E"))
    assert (b1.frames, b2.frames, other.frames, subscriber.frames) == ([b"E"], [b"E"], [], [])
    run(h.publish(App(id="9", key="x", secret="y"), "#server-to-user-bob", "F"))
    assert b1.frames == [b"E"]  # another app's user of the same id is someone else
    assert run(h.user_connections(APP, "bob")) == 2


def test_terminate_closes_only_the_users_signed_in_connections() -> None:
    h, _, _ = make_hub()
    b1, b2, other = Recorder("2.1"), Recorder("2.2"), Recorder("3.1")
    run(h.sign_in(APP, b1, user("bob")))
    run(h.sign_in(APP, b2, user("bob")))
    run(h.sign_in(APP, other, user("carl")))
    assert run(h.terminate_user(APP, "bob", UserTerminated("bye"))) == 2
    assert (b1.closed_with, b2.closed_with, other.closed_with) == ([4009], [4009], [])
    assert run(h.terminate_user(APP, "nobody", UserTerminated("bye"))) == 0
