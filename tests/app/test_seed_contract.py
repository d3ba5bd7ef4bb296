"""The fields a front end written against the seed reads: REST bodies and event payloads."""

from __future__ import annotations

import httpx

from tests.app.client import Listener, register
from tests.support.processes import Broadcaster

CONVERSATION = {"id", "user_id", "title", "model", "system_prompt", "metadata", "created_at",
                "updated_at"}
MESSAGE = {"id", "conversation_id", "user_id", "role", "content", "metadata", "is_streaming",
           "created_at", "updated_at", "completed_at"}


async def test_rest_bodies_and_events_carry_the_seeds_fields(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster
) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    assert set(conversation) >= CONVERSATION and conversation["user_id"] == user.id
    listener = await Listener.open(shared_broadcaster)
    await listener.subscribe(user, f"private-{conversation['channel']}")
    posted = await user.post(f"/api/conversations/{conversation['id']}/messages",
                             {"message": "hello"})
    body = posted.json()
    assert set(body["user_message"]) >= MESSAGE and set(body["assistant_message"]) >= MESSAGE
    reply_id = body["assistant_message"]["id"]
    final = await listener.completed(reply_id)
    assert {"id", "role", "content", "completed_at"} <= set(final)
    assert final["role"] == "assistant" and final["completed_at"]
    chunks = listener.chunks(reply_id)
    assert chunks and all({"message_id", "chunk"} <= set(c) for c in chunks)
    assert "".join(c["chunk"] for c in chunks) == final["content"]
    shown = (await user.get(f"/api/conversations/{conversation['id']}")).json()
    assert all(set(m) >= MESSAGE for m in shown["messages"])
    await listener.close()
