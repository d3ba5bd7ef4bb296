"""What each socket of a presence channel is told: the pure rules (`hub/rosters.py`) and the
per-socket views `LocalState` keeps with them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

import pytest

from broadcaster.hub.base import DeliveryCounter
from broadcaster.hub.envelope import Envelope, Kind
from broadcaster.hub.local_state import LocalState
from broadcaster.hub.redis_rosters import RosterSync
from broadcaster.hub.rosters import (
    MemberChange,
    ViewUpdates,
    corrections,
    intern_view,
    member_change,
    told_after,
)
from broadcaster.protocol import frames
from broadcaster.protocol.errors import PusherError
from broadcaster.protocol.presence import Member

if TYPE_CHECKING:
    from broadcaster.hub.redis_hub import RedisHub

CH = "presence-room"
T = TypeVar("T")


class Socket:
    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id
        self.frames: list[bytes] = []

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close_with(self, error: PusherError) -> None:
        raise AssertionError("not expected")

    def members(self) -> list[tuple[str, str]]:
        """(added/removed, user_id) of every member frame received."""
        out = []
        for frame in self.frames:
            event = json.loads(frame)
            kind = event["event"].rpartition("_")[2]
            out.append((kind, json.loads(event["data"])["user_id"]))
        return out


def test_member_change_reads_member_frames_only() -> None:
    assert member_change(frames.member_added(CH, "u1", {"n": 1})) == MemberChange(True, "u1")
    assert member_change(frames.member_removed(CH, "u1")) == MemberChange(False, "u1")
    assert member_change(frames.event_frame("client-x", CH, "{}")) is None
    assert member_change(frames.subscription_count(CH, 3)) is None
    # Looks like one but is not well formed: delivered unfiltered.
    assert member_change('{"event":"pusher_internal:member_added","data":"nope"}') is None
    assert member_change('{"event":"pusher_internal:member_added","data":"{\\"user_id\\":1}"}') \
        is None


@pytest.mark.parametrize(("view", "change", "after"), [
    ({"a"}, MemberChange(True, "b"), {"a", "b"}),
    ({"a"}, MemberChange(True, "a"), None),  # it has a: not again
    ({"a", "b"}, MemberChange(False, "b"), {"a"}),
    ({"a"}, MemberChange(False, "b"), None),  # never had b: no removal
])
def test_told_after(view: set[str], change: MemberChange, after: set[str] | None) -> None:
    got = told_after(frozenset(view), change)
    assert (None if got is None else set(got)) == after


def test_corrections_turn_a_view_into_the_roster_but_never_remove_users_here() -> None:
    view = frozenset({"a", "b", "here"})
    assert corrections(view, {"b": 1, "c": 1}, here={"here"}) == (["c"], ["a"])
    assert corrections(view, {"a": 1, "b": 1, "here": 1}) == ([], [])
    assert corrections(frozenset(), {"z": 1, "y": 1}) == (["y", "z"], [])


def test_equal_views_are_shared() -> None:
    common = frozenset({"a", "b"})
    assert intern_view(["b", "a"], common) is common
    assert intern_view(["a"], common) == {"a"}
    updates = ViewUpdates()
    first = updates.after(frozenset({"a"}), MemberChange(True, "b"))
    assert updates.after(frozenset({"a"}), MemberChange(True, "b")) is first


def local_with(*sockets: tuple[Socket, str, list[str]]) -> LocalState:
    """LocalState with each (socket, its user, the roster it was told) subscribed to CH."""
    local = LocalState(str.encode, DeliveryCounter())
    for socket, user_id, roster in sockets:
        local.add("app", CH, socket, Member(user_id, {"name": user_id}))
        local.told("app", CH, socket.socket_id, roster)
    return local


def test_member_frames_reach_only_the_sockets_they_are_news_to() -> None:
    s1, s2 = Socket("1.1"), Socket("1.2")
    local = local_with((s1, "a", ["a", "b"]), (s2, "c", ["a", "c"]))
    local.deliver("app", CH, frames.member_added(CH, "b", None), None)
    local.deliver("app", CH, frames.member_added(CH, "b", None), None)  # again: nobody
    local.deliver("app", CH, frames.member_removed(CH, "c"), "1.2")
    local.deliver("app", CH, frames.member_removed(CH, "c"), None)
    assert s1.members() == []  # had b; never had c
    assert s2.members() == [("added", "b"), ("removed", "c")]
    local.deliver("app", CH, frames.event_frame("client-x", CH, "{}"), None)
    assert len(s1.frames) == 1 and len(s2.frames) == 3


def test_sockets_without_a_view_get_every_frame() -> None:
    local = LocalState(str.encode, DeliveryCounter())
    told, untold = Socket("1.1"), Socket("1.2")
    local.add("app", CH, told, Member("a", None))
    local.told("app", CH, "1.1", ["a"])
    local.add("app", CH, untold, Member("b", None))
    local.deliver("app", CH, frames.member_added(CH, "a", None), None)
    assert told.members() == [] and untold.members() == [("added", "a")]


def test_correct_tells_each_socket_its_own_difference_once() -> None:
    s1, s2, s3 = Socket("1.1"), Socket("1.2"), Socket("1.3")
    local = local_with((s1, "a", ["a", "gone"]), (s2, "b", ["a", "b"]), (s3, "b", ["a", "b"]))
    roster = {"a": {"name": "A"}, "b": {"name": "B"}, "far": {"name": "F"}}
    assert local.correct("app", CH, roster) == 3 + 1 + 1
    assert s1.members() == [("removed", "gone"), ("added", "b"), ("added", "far")]
    assert s2.members() == s3.members() == [("added", "far")]
    assert json.loads(json.loads(s2.frames[0])["data"])["user_info"] == {"name": "F"}
    # The sockets now agree, share one view, and nothing is told twice.
    state = local.channel("app", CH)
    assert state is not None and state.views is not None
    assert len({id(view) for view in state.views.values()}) == 1
    assert local.correct("app", CH, roster) == 0
    local.deliver("app", CH, frames.member_added(CH, "far", None), None)
    assert len(s1.frames) == 3 and len(s2.frames) == 1


def test_correct_never_removes_a_user_connected_here() -> None:
    s1 = Socket("1.1")
    local = local_with((s1, "a", ["a", "b"]))
    assert local.correct("app", CH, {"b": None}) == 0  # Redis without "a": read too early
    assert s1.members() == []


def test_changes_are_stamped_by_joins_member_frames_and_corrections() -> None:
    s1 = Socket("1.1")
    local = local_with((s1, "a", ["a"]))
    state = local.channel("app", CH)
    assert state is not None
    seen = [state.changes]
    local.deliver("app", CH, frames.member_added(CH, "b", None), None)
    seen.append(state.changes)
    local.deliver("app", CH, frames.event_frame("client-x", CH, "{}"), None)  # not a change
    seen.append(state.changes)
    local.correct("app", CH, {"a": None, "c": None})
    seen.append(state.changes)
    assert seen[0] < seen[1] == seen[2] < seen[3]
    local.remove("app", CH, s1, Member("a", None))
    assert local.channel("app", CH) is None


class FakeState:
    """Answers roster reads from `roster`; `during` runs while a read is on its way."""

    def __init__(self, roster: dict[str, object], during: list[Callable[[], None]]) -> None:
        self.roster, self.during, self.reads = roster, during, 0

    async def rosters(self, app_id: str, channels: list[str]) -> list[dict[str, object]]:
        self.reads += 1
        answer = [dict(self.roster) for _ in channels]
        if self.during:
            self.during.pop(0)()
        return answer


class FakeHub:
    def __init__(self, local: LocalState, state: FakeState | None) -> None:
        self.local, self.state = local, state
        self.apps = {"app": None}
        self.node_id = "n1"
        self.sent: list[Envelope] = []

    async def shared(self, operation: Callable[[FakeState], Awaitable[T]]) -> T | None:
        return None if self.state is None else await operation(self.state)

    def send(self, message: Envelope) -> None:
        self.sent.append(message)


def test_a_roster_read_overtaken_by_a_member_frame_is_read_again() -> None:
    s1 = Socket("1.1")
    local = local_with((s1, "a", ["a"]))
    # While the first read is on its way, "late" joins and its member_added arrives: that read
    # (without "late") must not be used to announce "late" removed.
    state = FakeState({"a": None, "b": None}, [])

    def late_joins() -> None:
        state.roster["late"] = None  # in Redis once the read was answered...
        local.deliver("app", CH, frames.member_added(CH, "late", None), None)  # ...told here

    state.during.append(late_joins)
    sync = RosterSync(cast("RedisHub", FakeHub(local, state)))
    assert asyncio.run(sync.check("app")) == 1  # b added, from the second read
    assert state.reads == 2
    assert s1.members() == [("added", "late"), ("added", "b")]


def test_no_answer_from_redis_changes_nothing() -> None:
    s1 = Socket("1.1")
    local = local_with((s1, "a", ["a", "b"]))
    sync = RosterSync(cast("RedisHub", FakeHub(local, None)))
    assert asyncio.run(sync.check("app")) is None
    assert s1.frames == []


def test_a_registration_is_told_to_the_others_and_compared_after_the_settle() -> None:
    s1 = Socket("1.1")
    local = local_with((s1, "a", ["a", "gone"]))
    hub = FakeHub(local, FakeState({"a": None}, []))
    sync = RosterSync(cast("RedisHub", hub), settle=0.2, peer_settle=0.01)

    async def scenario() -> None:
        sync.registered()
        sync.peer_registered("app")  # does not hurry the pending comparison
        await asyncio.sleep(0.1)
        assert s1.frames == []
        await asyncio.sleep(0.3)
        assert s1.members() == [("removed", "gone")]
        await sync.stop()

    asyncio.run(scenario())
    assert [(m.kind, m.app_id, m.origin) for m in hub.sent] == [(Kind.RESYNC, "app", "n1")]
