"""After any Redis outage, every socket of a presence channel converges to the roster the HTTP
API answers, on every node, and is never told a member twice (or the removal of one it never
had), whether Redis kept its data or not and however late a node reconnects."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.scaling.conftest import WEBHOOK_EVENTS, Nodes, running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import join_presence
from tests.support.pusher_client import PusherTestClient
from tests.support.redis_servers import RedisServer
from tests.support.webhook_receiver import WebhookReceiver

CHANNEL = "presence-rosters"
ADDED, REMOVED = "pusher_internal:member_added", "pusher_internal:member_removed"
LIFECYCLE = ("member_added", "member_removed", "channel_occupied", "channel_vacated")


class Told:
    """What one socket was told about CHANNEL: its roster, then every member frame; a frame
    that repeats what it already says is recorded in `errors`."""

    def __init__(self, name: str, client: PusherTestClient, presence: dict[str, Any]) -> None:
        self.name, self.client = name, client
        self.ids: set[str] = set(presence["ids"])
        self.frames: list[tuple[str, str]] = []
        self.errors: list[str] = []

    async def read(self, seconds: float) -> None:
        """Apply every frame arriving within `seconds`."""
        try:
            while True:
                event = await self.client.next_event(seconds)
                if event["event"] not in (ADDED, REMOVED):
                    continue
                user_id = json.loads(event["data"])["user_id"]
                added = event["event"] == ADDED
                self.frames.append(("added" if added else "removed", user_id))
                if added == (user_id in self.ids):
                    self.errors.append(f"{self.name}: {self.frames[-1]} with {sorted(self.ids)}")
                if added:
                    self.ids.add(user_id)
                else:
                    self.ids.discard(user_id)
        except TimeoutError:
            return


async def join(nodes: Nodes, index: int, user_id: str) -> Told:
    client, presence = await join_presence(nodes, index, CHANNEL, user_id)
    return Told(f"{user_id}@{index}", client, presence)


def api_rosters(nodes: Nodes) -> list[list[str]]:
    return [sorted(u["id"] for u in nodes.get(i, f"channels/{CHANNEL}/users")["users"])
            for i in range(len(nodes))]


async def converge(nodes: Nodes, sockets: list[Told], want: list[str],
                   within: float = 12.0) -> None:
    """Wait until every node's API answers `want` and every socket was told exactly that;
    then check that nothing more arrives and that no socket was told anything twice."""
    deadline = time.monotonic() + within
    while True:
        await asyncio.gather(*(told.read(0.2) for told in sockets))
        answers = api_rosters(nodes)
        if all(a == want for a in answers) and all(sorted(t.ids) == want for t in sockets):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"no convergence to {want}: api {answers}, sockets "
                                 f"{ {t.name: sorted(t.ids) for t in sockets} }, "
                                 f"errors {[e for t in sockets for e in t.errors]}")
    await asyncio.gather(*(told.read(1.0) for told in sockets))
    assert {t.name: sorted(t.ids) for t in sockets} == {t.name: want for t in sockets}
    assert [e for t in sockets for e in t.errors] == []


def stop_redis(redis_server: RedisServer, keep: bool) -> None:
    """Redis goes away: with `keep`, saving its data to load again; else it comes back empty."""
    if keep:
        with redis_server.client() as client:
            client.shutdown(save=True)
    redis_server.stop()


async def test_redis_restarted_empty_rosters_converge_on_both_nodes(
        tmp_path: Path, redis_server: RedisServer, hook: WebhookReceiver) -> None:
    hooks = json.dumps([{"url": hook.url, "event_types": WEBHOOK_EVENTS}])
    with running_nodes(tmp_path, 2, scaling_env(redis_server,
                                                 REVERB_APP_WEBHOOKS=hooks)) as nodes:
        bob = await join(nodes, 0, "bob")
        alice = await join(nodes, 1, "alice")
        dave = await join(nodes, 1, "dave")
        await converge(nodes, [bob, alice, dave], ["alice", "bob", "dave"])

        stop_redis(redis_server, keep=False)
        await alice.client.close()
        carol = await join(nodes, 1, "carol")  # told node 1's members only: no bob yet
        erin = await join(nodes, 1, "erin")
        await erin.client.close()
        await asyncio.gather(bob.read(0.3), dave.read(0.3), carol.read(0.3))
        assert sorted(dave.ids) == ["bob", "carol", "dave"]  # node 1's own sockets know at once

        redis_server.start()  # empty
        await converge(nodes, [bob, dave, carol], ["bob", "carol", "dave"])
        # Corrections are told by each node to its own sockets: no webhook is repeated.
        lifecycle = Counter((e["name"], e.get("user_id")) for e in hook.accepted_events()
                            if e["name"] in LIFECYCLE)
        assert [(key, n) for key, n in lifecycle.items() if n > 1] == []
        for told in (bob, dave, carol):
            await told.client.close()


@pytest.mark.parametrize("keep", [False, True], ids=["empty", "kept"])
async def test_node_reconnecting_long_after_redis_returned_still_converges(
        tmp_path: Path, redis_server: RedisServer, keep: bool) -> None:
    with running_nodes(tmp_path, 2, scaling_env(redis_server)) as nodes:
        bob = await join(nodes, 0, "bob")
        alice = await join(nodes, 1, "alice")
        dave = await join(nodes, 1, "dave")
        await converge(nodes, [bob, alice, dave], ["alice", "bob", "dave"])

        stop_redis(redis_server, keep)
        # Changes on both nodes while Redis is away.
        await alice.client.close()
        carol = await join(nodes, 1, "carol")
        erin = await join(nodes, 0, "erin")
        late = nodes[1].process
        assert late is not None and late.proc is not None
        late.proc.send_signal(signal.SIGSTOP)  # node 1 misses Redis coming back...
        try:
            redis_server.start()
            # ...until well after node 0 reconnected (within 2 s) and settled (3 s).
            await asyncio.gather(bob.read(4.5), erin.read(4.5))
        finally:
            late.proc.send_signal(signal.SIGCONT)
        await converge(nodes, [bob, erin, dave, carol], ["bob", "carol", "dave", "erin"])
        for told in (bob, erin, dave, carol):
            await told.client.close()


async def test_user_joining_on_both_nodes_during_an_outage_is_added_once_per_socket(
        tmp_path: Path, redis_server: RedisServer, hook: WebhookReceiver) -> None:
    hooks = json.dumps([{"url": hook.url, "event_types": WEBHOOK_EVENTS}])
    with running_nodes(tmp_path, 2, scaling_env(redis_server,
                                                 REVERB_APP_WEBHOOKS=hooks)) as nodes:
        bob = await join(nodes, 0, "bob")
        dave = await join(nodes, 1, "dave")
        await converge(nodes, [bob, dave], ["bob", "dave"])

        stop_redis(redis_server, keep=True)
        zoe0 = await join(nodes, 0, "zoe")
        zoe1 = await join(nodes, 1, "zoe")
        redis_server.start()
        await converge(nodes, [bob, dave, zoe0, zoe1], ["bob", "dave", "zoe"])
        for told in (bob, dave):
            assert told.frames.count(("added", "zoe")) == 1, (told.name, told.frames)
        await hook.until(
            lambda ev: any(e["name"] == "member_added" and e["user_id"] == "zoe" for e in ev),
            "member_added of zoe")
        await asyncio.sleep(0.5)  # a second report would come with the first
        events = hook.accepted_events()
        assert [e["user_id"] for e in events if e["name"] == "member_added"].count("zoe") == 1
        for told in (bob, dave, zoe0, zoe1):
            await told.client.close()
