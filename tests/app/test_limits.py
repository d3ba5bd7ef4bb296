"""Per-user and per-address limits: posting, concurrent replies, registrations, sign-ins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.client import register
from tests.app.test_startup_and_ui import _start_and_fail
from tests.support.app_server import AppServer, app_env, running_app
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster

LIMITS = {
    "APP_MESSAGE_LIMIT_PER_MINUTE": "3",
    "APP_MAX_REPLIES_PER_USER": "1",
    "APP_REGISTER_LIMIT_PER_MINUTE": "4",
    "APP_LOGIN_ADDRESS_LIMIT_PER_MINUTE": "3",
    "APP_MAX_RUNNING_REPLIES": "2",
}


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory: pytest.TempPathFactory, shared_broadcaster: Broadcaster,
                fake_claude: FakeClaude) -> Iterator[AppServer]:
    with running_app(tmp_path_factory.mktemp("limited"), broadcaster=shared_broadcaster,
                     claude_url=fake_claude.base_url, extra_env=LIMITS) as server:
        yield server


async def test_posting_and_concurrent_replies_are_limited_per_user_and_process(
    limited_app: AppServer, fake_claude: FakeClaude
) -> None:
    async with httpx.AsyncClient(base_url=limited_app.base_url, timeout=10) as http:
        user, other, third = await register(http), await register(http), await register(http)
        rooms = [await person.new_conversation() for person in (user, other, third)]
        urls = [f"/api/conversations/{room['id']}/messages" for room in rooms]
        prompt = f"slow {uuid.uuid4().hex}"
        fake_claude.script(Script(reply="z" * 30, chunk_size=1, delay=0.05), match=prompt)
        assert (await user.post(urls[0], {"message": prompt})).status_code == 202
        busy = await user.post(urls[0], {"message": "and another"})
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        # Another user is not held up by this one's running reply...
        assert (await other.post(urls[1], {"message": prompt})).status_code == 202
        # ...until the process runs as many replies as it may: then everyone is asked to wait.
        shed = await third.post(urls[2], {"message": "hi"})
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        shown = (await third.get(f"/api/conversations/{rooms[2]['id']}")).json()
        assert shown["messages"] == []  # nothing half-stored
        statuses = []
        for _ in range(20):  # bounded: the replies end within a few seconds
            response = await user.post(urls[0], {"message": "again"})
            statuses.append(response.status_code)
            if "Too many messages" in response.text:
                break
            await asyncio.sleep(0.4)
        assert statuses[-1] == 429 and "Too many messages" in response.text, statuses
        assert statuses.count(202) == 2  # 3 messages a minute: the first and two more


async def test_registrations_and_sign_ins_are_limited_per_address(
    limited_app: AppServer,
) -> None:
    async with httpx.AsyncClient(base_url=limited_app.base_url, timeout=10) as http:
        statuses = []
        for n in range(6):
            response = await http.post("/api/register", json={
                "name": "R", "email": f"r{n}.{uuid.uuid4().hex[:6]}@example.com",
                "password": "long-enough-pw"})
            statuses.append(response.status_code)
        assert statuses.count(429) >= 2 and 201 in statuses
        logins = [(await http.post("/api/login", json={
            "email": f"nobody{n}@example.com", "password": "whatever-pw"})).status_code
            for n in range(5)]
        assert logins[:3] == [422] * 3 and logins[3:] == [429, 429]


def test_a_failing_database_url_is_reported_without_its_password(tmp_path: Path) -> None:
    env = app_env(database_url="postgresql+psycopg://chat:hunter2-secret@127.0.0.1:1/chat")
    result = _start_and_fail(env)
    assert result.returncode == 1
    assert "cannot prepare the database" in result.stderr
    assert "hunter2-secret" not in result.stderr + result.stdout
