"""Claude failing, the broadcaster going away, the app dying: the stored reply stays truthful."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.app.client import ApiUser, Listener, register
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster


async def _wait_until_ended(user: ApiUser, conversation_id: int, message_id: int,
                            timeout: float = 15.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        messages = (await user.get(f"/api/conversations/{conversation_id}")).json()["messages"]
        message: dict[str, object] = next(m for m in messages if m["id"] == message_id)
        if not message["is_streaming"]:
            return message
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("script", "partial", "reason"),
    [
        (Script(error_status=401), "", "rejected the API key"),
        (Script(error_status=429), "", "rate limit"),
        (Script(error_status=529), "", "overloaded"),
        (Script(reply="abcdefghijkl", chunk_size=2, drop_after=3), "abcdef", "Lost the connection"),
        (Script(reply="abcdefghijkl", chunk_size=2, error_event_after=2), "abcd", "overloaded"),
    ],
    ids=["auth", "rate-limit", "overloaded", "dropped", "error-event"],
)
async def test_claude_failures_end_the_reply_as_failed_with_a_reason(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster, fake_claude: FakeClaude,
    script: Script, partial: str, reason: str,
) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    listener = await Listener.open(shared_broadcaster)
    await listener.subscribe(user, f"private-{conversation['channel']}")
    prompt = f"fail please {uuid.uuid4().hex}"
    fake_claude.script(script, match=prompt)
    posted = await user.post(f"/api/conversations/{conversation['id']}/messages",
                             {"message": prompt})
    reply_id = posted.json()["assistant_message"]["id"]

    final = await listener.completed(reply_id)
    assert final["status"] == "failed" and final["is_streaming"] is False
    assert reason.lower() in final["error"].lower()
    assert final["content"] == partial
    stored = await _wait_until_ended(user, conversation["id"], reply_id)
    assert stored["status"] == "failed" and stored["content"] == partial
    assert stored["error"] == final["error"]
    assert "".join(c["chunk"] for c in listener.chunks(reply_id)) == partial
    await listener.close()

    # A failed reply is left out of the next request's history.
    follow_up = f"again {uuid.uuid4().hex}"
    fake_claude.script(Script(reply="fine now"), match=follow_up)
    posted = await user.post(f"/api/conversations/{conversation['id']}/messages",
                             {"message": follow_up})
    await _wait_until_ended(user, conversation["id"], posted.json()["assistant_message"]["id"])
    sent = fake_claude.requests_matching(follow_up)[-1]["messages"]
    assert [m["role"] for m in sent] == ["user"]
    assert sent[0]["content"] == f"{prompt}\n\n{follow_up}"
