"""Several app processes on one Redis and one database: whichever process a request lands on,
cancels reach the streaming process and limits and idempotency keys hold."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app.client import ApiUser, Listener, register
from tests.support.app_server import AppServer, app_env, running_app
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster, free_port
from tests.support.redis_servers import RedisServer, standalone

REPO_ROOT = Path(__file__).resolve().parents[2]
LIMITS = {
    "APP_MESSAGE_LIMIT_PER_MINUTE": "4",
    "APP_MAX_REPLIES_PER_USER": "2",
    "APP_TYPING_LIMIT_PER_MINUTE": "3",
    "APP_LOGIN_ADDRESS_LIMIT_PER_MINUTE": "3",
}


@dataclass
class Pair:
    """Two app processes sharing a database and a Redis; `users` sign in on the first."""

    first: AppServer
    second: AppServer
    redis: RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with standalone(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, shared_broadcaster: Broadcaster,
         fake_claude: FakeClaude, postgres_url: str, redis_server: RedisServer) -> Iterator[Pair]:
    env = {**LIMITS, "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"}
    with running_app(tmp_path_factory.mktemp("first"), database_url=postgres_url,
                     broadcaster=shared_broadcaster, claude_url=fake_claude.base_url,
                     extra_env=env) as first, \
            running_app(tmp_path_factory.mktemp("second"), database_url=postgres_url,
                        broadcaster=shared_broadcaster, claude_url=fake_claude.base_url,
                        extra_env=env) as second:
        yield Pair(first, second, redis_server)


def on(user: ApiUser, http: httpx.AsyncClient) -> ApiUser:
    """The same user (same token) calling another process."""
    return ApiUser(http, user.token, user.id, user.name, user.email)


def test_both_processes_share_their_state_in_redis(pair: Pair) -> None:
    healths = [httpx.get(f"{s.base_url}/up", timeout=5).json() for s in (pair.first, pair.second)]
    assert [h["shared_state"] for h in healths] == ["redis", "redis"]
    assert healths[0]["process"] != healths[1]["process"]


async def test_a_cancel_sent_to_the_other_process_stops_the_reply(
    pair: Pair, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a, \
            httpx.AsyncClient(base_url=pair.second.base_url, timeout=15) as b:
        user = await register(a)
        conversation = await user.new_conversation()
        listener = await Listener.open(shared_broadcaster)
        await listener.subscribe(user, f"private-{conversation['channel']}")
        prompt = f"endless {uuid.uuid4().hex}"
        reply = "and then " * 200
        fake_claude.script(Script(reply=reply, chunk_size=5, delay=0.05), match=prompt)
        url = f"/api/conversations/{conversation['id']}/messages"
        posted = await user.post(url, {"message": prompt})
        assert posted.status_code == 202, posted.text
        reply_id = posted.json()["assistant_message"]["id"]
        await listener.wait_for(lambda e: e["event"] == "message.chunk"
                                and e["data"]["message_id"] == reply_id
                                and e["data"]["seq"] >= 2)

        started = time.perf_counter()
        cancelled = await on(user, b).post(f"{url}/{reply_id}/cancel")
        took = time.perf_counter() - started
        assert cancelled.status_code == 200, cancelled.text
        message = cancelled.json()["message"]
        assert message["status"] == "cancelled", message
        assert message["content"] and reply.startswith(message["content"])
        assert len(message["content"]) < len(reply)
        assert took < 2.0, took  # one poll of the streaming process, not the whole reply
        final = await listener.completed(reply_id)
        assert final["status"] == "cancelled" and final["content"] == message["content"]
        chunks = listener.chunks(reply_id)
        assert "".join(c["chunk"] for c in chunks) == message["content"]
        stored = (await user.get(f"/api/conversations/{conversation['id']}")).json()
        assert stored["messages"][-1]["status"] == "cancelled"
        assert stored["messages"][-1]["content"] == message["content"]
        await listener.close()


async def test_concurrent_replies_and_posts_are_counted_across_processes(
    pair: Pair, fake_claude: FakeClaude
) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a, \
            httpx.AsyncClient(base_url=pair.second.base_url, timeout=15) as b:
        user = await register(a)
        rooms = [await user.new_conversation() for _ in range(3)]
        urls = [f"/api/conversations/{room['id']}/messages" for room in rooms]
        prompt = f"slow {uuid.uuid4().hex}"
        fake_claude.script(Script(reply="z" * 40, chunk_size=1, delay=0.05), match=prompt)
        first = await user.post(urls[0], {"message": prompt})
        second = await on(user, b).post(urls[1], {"message": prompt})
        assert (first.status_code, second.status_code) == (202, 202)
        # Two replies run for this user, one in each process: the limit is 2 in all of them.
        busy = await user.post(urls[2], {"message": prompt})
        assert busy.status_code == 429 and "replies" in busy.text, busy.text
        ids = [first.json()["assistant_message"]["id"], second.json()["assistant_message"]["id"]]
        for reply_id, url in zip(ids, urls[:2], strict=True):
            await on(user, b).post(f"{url}/{reply_id}/cancel")
        # Four messages a minute for this user, whichever process takes them: two are spent.
        fast = f"quick {uuid.uuid4().hex}"
        fake_claude.script(Script(reply="ok"), match=fast)
        third = await _post_when_free(on(user, b), urls[2], fast)
        fourth = await _post_when_free(user, urls[1], fast)
        fifth = await _post_when_free(on(user, b), urls[0], fast)
        assert [third.status_code, fourth.status_code] == [202, 202], (third.text, fourth.text)
        assert fifth.status_code == 429 and "Too many messages" in fifth.text, fifth.text
        assert int(fifth.headers["retry-after"]) >= 1


async def _post_when_free(user: ApiUser, url: str, text: str) -> httpx.Response:
    """Post, waiting (bounded) while the user's earlier replies still hold their slots: a
    refused post for that reason counts no message."""
    for _ in range(50):
        response = await user.post(url, {"message": text})
        if response.status_code != 429 or "replies" not in response.text:
            return response
        await asyncio.sleep(0.1)
    return response


async def test_a_member_removed_on_the_other_process_stops_receiving_the_reply(
    pair: Pair, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a, \
            httpx.AsyncClient(base_url=pair.second.base_url, timeout=15) as b:
        owner, guest = await register(a, "Owner"), await register(a, "Guest")
        conversation = await owner.new_conversation()
        base = f"/api/conversations/{conversation['id']}"
        invited = await owner.post(f"{base}/members", {"email": guest.email})
        old_channel = f"private-{invited.json()['conversation']['channel']}"
        guest_socket = await Listener.open(shared_broadcaster)
        owner_socket = await Listener.open(shared_broadcaster)
        await guest_socket.subscribe(guest, old_channel)
        await owner_socket.subscribe(owner, old_channel)
        prompt = f"long reply {uuid.uuid4().hex}"
        fake_claude.script(Script(reply="x" * 200, chunk_size=2, delay=0.02), match=prompt)
        posted = await owner.post(f"{base}/messages", {"message": prompt})  # streams on `a`
        reply_id = posted.json()["assistant_message"]["id"]
        await guest_socket.wait_for(lambda e: e["event"] == "message.chunk")

        removed = await on(owner, b).delete(f"{base}/members/{guest.id}")
        assert removed.status_code == 200, removed.text
        new_channel = f"private-{removed.json()['conversation']['channel']}"
        await guest_socket.wait_for(lambda e: e["event"] == "member.removed")
        heard = len(guest_socket.chunks(reply_id))
        await owner_socket.subscribe(owner, new_channel)
        final = await owner_socket.completed(reply_id)
        assert final["content"] == "x" * 200
        await asyncio.sleep(0.3)
        assert len(guest_socket.chunks(reply_id)) == heard  # nothing after the removal
        assert not any(e["event"] == "message.completed" for e in guest_socket.events)
        assert heard < len(owner_socket.chunks(reply_id))
        await guest_socket.close()
        await owner_socket.close()


async def test_a_process_starting_leaves_the_replies_of_the_others_streaming(
    pair: Pair, shared_broadcaster: Broadcaster, fake_claude: FakeClaude, postgres_url: str,
    tmp_path: Path,
) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a:
        user = await register(a)
        conversation = await user.new_conversation()
        prompt = f"long {uuid.uuid4().hex}"
        fake_claude.script(Script(reply="y" * 160, chunk_size=1, delay=0.05), match=prompt)
        url = f"/api/conversations/{conversation['id']}/messages"
        reply_id = (await user.post(url, {"message": prompt})).json()["assistant_message"]["id"]
        env = {**LIMITS, "REDIS_URL": f"redis://127.0.0.1:{pair.redis.port}/0"}
        # A third process starts (as after a deploy or a crash) while the reply streams.
        with running_app(tmp_path, database_url=postgres_url, broadcaster=shared_broadcaster,
                         claude_url=fake_claude.base_url, extra_env=env):
            shown = (await user.get(f"/api/conversations/{conversation['id']}")).json()
            assert shown["messages"][-1]["status"] == "streaming", shown["messages"][-1]
        for _ in range(100):  # bounded: the reply takes about 8 s
            last = (await user.get(f"/api/conversations/{conversation['id']}")).json()
            if last["messages"][-1]["status"] != "streaming":
                break
            await asyncio.sleep(0.2)
        assert last["messages"][-1]["id"] == reply_id
        assert last["messages"][-1]["status"] == "complete"
        assert last["messages"][-1]["content"] == "y" * 160


async def test_an_idempotency_key_replays_on_the_other_process(pair: Pair) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a, \
            httpx.AsyncClient(base_url=pair.second.base_url, timeout=15) as b:
        user = await register(a)
        conversation = await user.new_conversation()
        url = f"/api/conversations/{conversation['id']}/messages"
        key = {"Idempotency-Key": uuid.uuid4().hex}
        first = await user.post(url, {"message": "only once"}, headers=key)
        again = await on(user, b).post(url, {"message": "only once"}, headers=key)
        assert first.status_code == again.status_code == 202
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()
        other = await on(user, b).post(url, {"message": "something else"}, headers=key)
        assert other.status_code == 422
        shown = (await user.get(f"/api/conversations/{conversation['id']}")).json()
        assert [m["content"] for m in shown["messages"] if m["role"] == "user"] == ["only once"]


async def test_typing_and_sign_in_limits_hold_across_processes(pair: Pair) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a, \
            httpx.AsyncClient(base_url=pair.second.base_url, timeout=15) as b:
        user = await register(a)
        conversation = await user.new_conversation()
        url = f"/api/conversations/{conversation['id']}/typing"
        statuses = [(await on(user, http).post(url, {"is_typing": True})).status_code
                    for http in (a, b, a, b, a)]
        assert statuses == [200, 200, 200, 429, 429]
        logins = [(await http.post("/api/login", json={
            "email": f"nobody{n}@example.com", "password": "whatever-pw"})).status_code
            for n, http in enumerate((a, b, a, b))]
        assert logins == [422, 422, 422, 429]


async def test_while_redis_is_down_posts_are_refused_and_nothing_is_stored(pair: Pair) -> None:
    async with httpx.AsyncClient(base_url=pair.first.base_url, timeout=15) as a:
        user = await register(a)
        conversation = await user.new_conversation()
        url = f"/api/conversations/{conversation['id']}/messages"
        pair.redis.stop()
        try:
            refused = await user.post(url, {"message": "hello"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "2"
            shown = (await user.get(f"/api/conversations/{conversation['id']}")).json()
            assert shown["messages"] == []
        finally:
            pair.redis.start()
        for _ in range(20):  # bounded: a pooled connection to the stopped server fails once
            accepted = await user.post(url, {"message": "hello"})
            if accepted.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert accepted.status_code == 202, accepted.text


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--port", str(free_port()), *args],
        env={**os.environ, **env}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
        check=False,
    )


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    env = app_env(database_url=f"sqlite:///{tmp_path / 'w.sqlite3'}")
    result = _serve(env, "--workers", "2")
    assert result.returncode == 2
    assert "--workers above 1 needs a Redis" in result.stderr


async def test_two_workers_serve_one_port_with_the_same_secrets(
    tmp_path: Path, redis_server: RedisServer, shared_broadcaster: Broadcaster
) -> None:
    env = app_env(database_url=f"sqlite:///{tmp_path / 'w.sqlite3'}",
                  broadcaster=shared_broadcaster,
                  extra={"REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
                         "APP_SECRET_KEY": ""})  # generated once, by the parent, for both
    server = AppServer(env=env, workers=2, log_path=tmp_path / "app.log").start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            user = await register(http)
            seen: set[int] = set()
            for _ in range(200):  # bounded: the kernel spreads new connections over both
                async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as fresh:
                    seen.add((await fresh.get("/up")).json()["process"])
                    assert (await on(user, fresh).get("/api/me")).status_code == 200
                if len(seen) == 2:
                    break
            assert len(seen) == 2, server.log()[-2000:]
    finally:
        server.stop()
