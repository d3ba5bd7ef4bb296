"""Sending a message streams the reply through a real broadcaster to real WebSocket clients."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid

import httpx

from tests.app.client import Listener, register
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


async def test_sending_dispatches_events_to_the_room(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    owner, guest = await register(http, "Owner"), await register(http, "Guest")
    conversation = await owner.new_conversation()
    channel = f"private-{conversation['channel']}"
    invited = await owner.post(f"/api/conversations/{conversation['id']}/members",
                               {"email": guest.email})
    assert invited.status_code == 201, invited.text
    prompt = unique("Say hello")
    reply = "Hello to both of you, streamed in pieces."
    fake_claude.script(Script(reply=reply, chunk_size=3, delay=0.005), match=prompt)

    sender, other = await Listener.open(shared_broadcaster), await Listener.open(shared_broadcaster)
    for listener, user in ((sender, owner), (other, guest)):
        answer = await listener.subscribe(user, channel)
        assert answer["event"] == "pusher_internal:subscription_succeeded"

    response = await owner.post(f"/api/conversations/{conversation['id']}/messages",
                                {"message": prompt}, socket_id=sender.socket_id)
    assert response.status_code == 202, response.text
    posted = response.json()
    assert posted["user_message"]["content"] == prompt
    assert posted["user_message"]["user_name"] == "Owner"
    placeholder = posted["assistant_message"]
    assert placeholder["is_streaming"] is True and placeholder["status"] == "streaming"

    for listener in (sender, other):
        final = await listener.completed(placeholder["id"])
        assert final["content"] == reply and final["status"] == "complete"
        chunks = listener.chunks(placeholder["id"])
        assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
        assert "".join(c["chunk"] for c in chunks) == reply
        assert final["seq"] == len(chunks)
    # message.created goes to the others only (toOthers via X-Socket-ID), chunks to everyone.
    created = [e["data"]["message"]["id"] for e in other.named("message.created", channel)]
    assert created == [posted["user_message"]["id"], placeholder["id"]]
    assert sender.named("message.created") == []

    stored = (await guest.get(f"/api/conversations/{conversation['id']}")).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == reply and stored[1]["is_streaming"] is False
    assert stored[1]["seq"] == final["seq"]
    await sender.close()
    await other.close()


async def test_claude_gets_the_history_model_and_system_prompt(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    user = await register(http)
    conversation = await user.new_conversation(
        model="claude-haiku-4-5", system_prompt="Answer in French."
    )
    listener = await Listener.open(shared_broadcaster)
    await listener.subscribe(user, f"private-{conversation['channel']}")
    first, second = unique("First question"), unique("Second question")
    fake_claude.script(Script(reply="Première réponse."), match=first)
    fake_claude.script(Script(reply="Deuxième réponse."), match=second)
    url = f"/api/conversations/{conversation['id']}/messages"
    for prompt in (first, second):
        posted = (await user.post(url, {"message": prompt})).json()
        await listener.completed(posted["assistant_message"]["id"])

    request = fake_claude.requests_matching(second)[-1]
    assert request["model"] == "claude-haiku-4-5"
    assert request["system"] == "Answer in French."
    assert request["stream"] is True
    assert request["messages"] == [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "Première réponse."},
        {"role": "user", "content": second},
    ]
    await listener.close()


async def test_a_retry_with_the_same_idempotency_key_creates_nothing(
    http: httpx.AsyncClient, fake_claude: FakeClaude
) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    prompt = unique("Only once")
    url = f"/api/conversations/{conversation['id']}/messages"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await user.post(url, {"message": prompt}, headers=key)
    again = await asyncio.gather(*(user.post(url, {"message": prompt}, headers=key)
                                   for _ in range(3)))
    assert first.status_code == 202
    for response in again:
        assert response.status_code == 202
        assert response.json() == first.json()
        assert response.headers["idempotent-replayed"] == "true"
    other_key = await user.post(url, {"message": prompt}, headers={"Idempotency-Key": "other"})
    assert other_key.json()["user_message"]["id"] != first.json()["user_message"]["id"]

    messages = (await user.get(f"/api/conversations/{conversation['id']}")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    for _ in range(100):
        if len(fake_claude.requests_matching(prompt)) >= 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert len(fake_claude.requests_matching(prompt)) == 2


async def test_since_returns_the_text_so_far_and_the_seq_to_continue_from(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    listener = await Listener.open(shared_broadcaster)
    await listener.subscribe(user, f"private-{conversation['channel']}")
    prompt = unique("Long answer please")
    reply = "".join(f"word{i} " for i in range(60))
    fake_claude.script(Script(reply=reply, chunk_size=6, delay=0.05), match=prompt)
    url = f"/api/conversations/{conversation['id']}"
    posted = (await user.post(f"{url}/messages", {"message": prompt})).json()
    reply_id = posted["assistant_message"]["id"]

    await listener.wait_for(lambda e: e["event"] == "message.chunk"
                            and e["data"]["message_id"] == reply_id and e["data"]["seq"] >= 3)
    await asyncio.sleep(1.3)  # past one save interval
    caught_up = (await user.get(url, params={"since": posted["user_message"]["id"]})).json()
    assert [m["id"] for m in caught_up["messages"]] == [reply_id]
    partial = caught_up["messages"][0]
    assert partial["is_streaming"] is True and partial["status"] == "streaming"
    assert partial["seq"] >= 1 and partial["content"]
    assert reply.startswith(partial["content"])

    final = await listener.completed(reply_id, timeout=20)
    chunks = listener.chunks(reply_id)
    # The saved text is exactly chunks 1..seq, so a client resumes at seq + 1 without gaps.
    assert "".join(c["chunk"] for c in chunks[: partial["seq"]]) == partial["content"]
    assert partial["content"] + "".join(c["chunk"] for c in chunks[partial["seq"]:]) == reply
    assert final["content"] == reply
    after = (await user.get(url, params={"since": reply_id})).json()["messages"]
    assert after == []
    await listener.close()


async def test_cancel_stops_the_reply_and_keeps_the_text_so_far(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    listener = await Listener.open(shared_broadcaster)
    await listener.subscribe(user, f"private-{conversation['channel']}")
    prompt = unique("Never ending story")
    reply = "once upon a time " * 100
    fake_claude.script(Script(reply=reply, chunk_size=5, delay=0.05), match=prompt)
    url = f"/api/conversations/{conversation['id']}/messages"
    reply_id = (await user.post(url, {"message": prompt})).json()["assistant_message"]["id"]
    await listener.wait_for(lambda e: e["event"] == "message.chunk"
                            and e["data"]["message_id"] == reply_id and e["data"]["seq"] >= 2)

    cancelled = await user.post(f"{url}/{reply_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    message = cancelled.json()["message"]
    assert message["status"] == "cancelled" and message["is_streaming"] is False
    assert message["content"] and reply.startswith(message["content"])
    assert len(message["content"]) < len(reply)
    final = await listener.completed(reply_id)
    assert final["status"] == "cancelled" and final["content"] == message["content"]
    chunks = listener.chunks(reply_id)
    assert "".join(c["chunk"] for c in chunks) == message["content"]

    again = await user.post(f"{url}/{reply_id}/cancel")
    assert again.status_code == 409
    assert again.json()["message"]["status"] == "cancelled"
    await listener.close()


async def test_typing_reaches_the_others_on_presence_and_is_rate_limited(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster
) -> None:
    owner, guest = await register(http, "Typist"), await register(http, "Reader")
    conversation = await owner.new_conversation()
    await owner.post(f"/api/conversations/{conversation['id']}/members", {"email": guest.email})
    channel = f"presence-{conversation['channel']}"
    typist, reader = await Listener.open(shared_broadcaster), await Listener.open(
        shared_broadcaster)
    joined = await typist.subscribe(owner, channel)
    assert joined["data"]["presence"]["hash"][str(owner.id)] == {"id": owner.id,
                                                                  "name": "Typist"}
    await reader.subscribe(guest, channel)

    url = f"/api/conversations/{conversation['id']}/typing"
    response = await owner.post(url, {"is_typing": True}, socket_id=typist.socket_id)
    assert response.status_code == 200, response.text
    event = await reader.wait_for(lambda e: e["event"] == "user.typing")
    assert event["channel"] == channel
    # The seed's fields, plus `user` for earlier clients.
    assert event["data"] == {"user_id": owner.id, "user_name": "Typist", "is_typing": True,
                             "user": {"id": owner.id, "name": "Typist"}}

    statuses = [(await owner.post(url, {"is_typing": False}, socket_id=typist.socket_id)
                 ).status_code for _ in range(10)]
    assert statuses == [200] * 9 + [429]
    limited = await owner.post(url, {"is_typing": True})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "error" in limited.json()
    # The limit is per user and conversation: the guest may still type.
    assert (await guest.post(url, {"is_typing": True})).status_code == 200
    await typist.wait_for(lambda e: e["event"] == "user.typing")
    assert [e["data"]["user"]["id"] for e in typist.named("user.typing")] == [guest.id]
    from_owner = [e for e in reader.named("user.typing") if e["data"]["user"]["id"] == owner.id]
    assert len(from_owner) == 10  # 1 + the 9 allowed; the refused ones were not published
    await typist.close()
    await reader.close()


async def test_outsiders_get_403_everywhere(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster
) -> None:
    owner, stranger = await register(http), await register(http, "Stranger")
    conversation = await owner.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    posted = await owner.post(f"{base}/messages", {"message": "private thoughts"})
    reply_id = posted.json()["assistant_message"]["id"]

    assert (await stranger.get(base)).status_code == 403
    assert (await stranger.post(f"{base}/messages", {"message": "hi"})).status_code == 403
    assert (await stranger.post(f"{base}/messages", {})).status_code == 403
    assert (await stranger.post(f"{base}/typing", {"is_typing": True})).status_code == 403
    assert (await stranger.post(f"{base}/messages/{reply_id}/cancel")).status_code == 403
    assert (await stranger.delete(base)).status_code == 403
    listener = await Listener.open(shared_broadcaster)
    for channel in (f"private-{conversation['channel']}",
                    f"presence-{conversation['channel']}"):
        refused = await stranger.channel_auth(listener.socket_id, channel)
        assert refused.status_code == 403 and "error" in refused.json()
    stem = conversation["channel"]
    for channel in ("private-other", "presence-conversation.999999999", "private-conversation.x",
                    f"private-conversation.{conversation['id']}",
                    f"private-{stem[:-1]}{'0' if stem[-1] != '0' else '1'}"):
        assert (await owner.channel_auth(listener.socket_id, channel)).status_code == 403
    # A forged subscription without a valid signature is refused by the broadcaster itself.
    await listener.ws.send(
        '{"event":"pusher:subscribe","data":{"channel":"private-'
        f'{stem}","auth":"app-key:{"0" * 64}"}}}}'
    )
    refused_event = await listener.wait_for(lambda e: e["event"] == "pusher:subscription_error")
    assert refused_event["data"]["status"] == 401
    await listener.close()


async def test_user_auth_signs_pusher_signin(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster
) -> None:
    user = await register(http, "Signer")
    response = await http.post("/broadcasting/user-auth", data={"socket_id": "123.456"},
                               headers=user.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    user_data = json.loads(body["user_data"])
    assert user_data == {"id": str(user.id), "user_info": {"id": user.id, "name": "Signer"}}
    expected = hmac.new(shared_broadcaster.secret.encode(),
                        f"123.456::user::{body['user_data']}".encode(), hashlib.sha256)
    assert body["auth"] == f"{shared_broadcaster.key}:{expected.hexdigest()}"
    anonymous = await http.post("/broadcasting/user-auth", data={"socket_id": "123.456"})
    assert anonymous.status_code == 401
    malformed = await http.post("/broadcasting/user-auth", data={"socket_id": "abc"},
                                headers=user.headers())
    assert malformed.status_code == 422
