"""The database is the source of truth: replies survive a dead broadcaster and an app restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.app.client import ApiUser, Listener, register
from tests.support.app_server import running_app
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster


async def _reply(user: ApiUser, conversation_id: int, message_id: int) -> dict[str, object]:
    messages = (await user.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    message: dict[str, object] = next(m for m in messages if m["id"] == message_id)
    return message


async def _wait_until_ended(user: ApiUser, conversation_id: int, message_id: int,
                            timeout: float = 20.0) -> dict[str, object]:
    for _ in range(int(timeout / 0.1)):
        message = await _reply(user, conversation_id, message_id)
        if not message["is_streaming"]:
            return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"reply {message_id} still streaming after {timeout}s")


async def test_reply_completes_and_is_stored_when_the_broadcaster_dies(
    tmp_path: Path, broadcaster: Broadcaster
) -> None:
    reply = "".join(f"token{i} " for i in range(40))
    with FakeClaude() as claude, running_app(
        tmp_path, broadcaster=broadcaster, claude_url=claude.base_url,
        extra_env={"APP_PUBLISH_TIMEOUT_MS": "300"},
    ) as app:
        claude.set_default(Script(reply=reply, chunk_size=8, delay=0.05))
        async with httpx.AsyncClient(base_url=app.base_url, timeout=10) as http:
            user = await register(http)
            conversation = await user.new_conversation()
            listener = await Listener.open(broadcaster)
            await listener.subscribe(user, f"private-{conversation['channel']}")
            posted = await user.post(f"/api/conversations/{conversation['id']}/messages",
                                     {"message": "tell me a long story"})
            reply_id = posted.json()["assistant_message"]["id"]
            await listener.wait_for(lambda e: e["event"] == "message.chunk")
            broadcaster.kill()

            stored = await _wait_until_ended(user, conversation["id"], reply_id)
            assert stored["status"] == "complete" and stored["content"] == reply
            health = (await http.get("/up")).json()
            assert health["publisher"]["failed"] >= 1
            assert health["publisher"]["last_error"]
            # The API keeps answering without the broadcaster.
            again = await user.post(f"/api/conversations/{conversation['id']}/messages",
                                    {"message": "still there?"})
            assert again.status_code == 202
            second = await _wait_until_ended(user, conversation["id"],
                                             again.json()["assistant_message"]["id"])
            assert second["status"] == "complete"
        await listener.close()
    assert "publish of message.chunk" in app.log()


async def test_a_restart_keeps_data_and_fails_replies_it_interrupted(
    tmp_path: Path, broadcaster: Broadcaster
) -> None:
    database_url = f"sqlite:///{tmp_path / 'kept.sqlite3'}"
    with FakeClaude() as claude:
        claude.set_default(Script(reply="slow " * 200, chunk_size=5, delay=0.05))
        with running_app(tmp_path, database_url=database_url, broadcaster=broadcaster,
                         claude_url=claude.base_url) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=10) as http:
                user = await register(http)
                conversation = await user.new_conversation()
                posted = await user.post(f"/api/conversations/{conversation['id']}/messages",
                                         {"message": "a very long answer"})
                reply_id = posted.json()["assistant_message"]["id"]
                await asyncio.sleep(0.5)
            app.kill()
        with running_app(tmp_path, database_url=database_url, broadcaster=broadcaster,
                         claude_url=claude.base_url) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=10) as http:
                login = await http.post("/api/login", json={"email": user.email,
                                                            "password": "correct-horse-1"})
                assert login.status_code == 200
                user.token = login.json()["token"]
                user.http = http
                message = await _reply(user, conversation["id"], reply_id)
                assert message["status"] == "failed" and message["is_streaming"] is False
                assert "restarted" in str(message["error"])
