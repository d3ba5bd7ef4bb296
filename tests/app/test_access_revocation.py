"""Losing access is immediate: ids are never reused, and old subscriptions go silent."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.app.client import Listener, register
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster

LIVE = ("message.created", "message.chunk", "message.completed", "user.typing")


async def test_deleted_ids_are_never_reused(http: httpx.AsyncClient) -> None:
    user = await register(http)
    first = await user.new_conversation()
    posted = await user.post(f"/api/conversations/{first['id']}/messages", {"message": "hi"})
    reply_id = posted.json()["assistant_message"]["id"]
    assert (await user.delete(f"/api/conversations/{first['id']}")).status_code == 200
    second = await user.new_conversation()
    assert second["id"] > first["id"]
    again = await user.post(f"/api/conversations/{second['id']}/messages", {"message": "hi"})
    assert again.json()["user_message"]["id"] > reply_id


async def test_a_deleted_conversations_subscribers_hear_nothing_of_the_next_one(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster
) -> None:
    former, successor = await register(http, "Former"), await register(http, "Successor")
    old = await former.new_conversation()
    spy = await Listener.open(shared_broadcaster)
    await spy.subscribe(former, f"private-{old['channel']}")
    await spy.subscribe(former, f"presence-{old['channel']}")
    assert (await former.delete(f"/api/conversations/{old['id']}")).status_code == 200
    await spy.wait_for(lambda e: e["event"] == "conversation.deleted")

    new = await successor.new_conversation()
    assert new["id"] != old["id"] and new["channel"] != old["channel"]
    owner = await Listener.open(shared_broadcaster)
    await owner.subscribe(successor, f"private-{new['channel']}")
    base = f"/api/conversations/{new['id']}"
    posted = await successor.post(f"{base}/messages", {"message": "secret plans"})
    await successor.post(f"{base}/typing", {"is_typing": True})
    await owner.completed(posted.json()["assistant_message"]["id"])
    await asyncio.sleep(0.3)
    assert [e for e in spy.events if e["event"] in LIVE] == []
    await spy.close()
    await owner.close()


async def test_a_removed_member_stops_receiving_at_once_even_mid_reply(
    http: httpx.AsyncClient, shared_broadcaster: Broadcaster, fake_claude: FakeClaude
) -> None:
    owner, guest = await register(http, "Owner"), await register(http, "Guest")
    conversation = await owner.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    invited = await owner.post(f"{base}/members", {"email": guest.email})
    old_channel = f"private-{invited.json()['conversation']['channel']}"
    guest_socket, owner_socket = (await Listener.open(shared_broadcaster),
                                  await Listener.open(shared_broadcaster))
    await guest_socket.subscribe(guest, old_channel)
    await owner_socket.subscribe(owner, old_channel)
    prompt = f"long reply {uuid.uuid4().hex}"
    fake_claude.script(Script(reply="x" * 200, chunk_size=2, delay=0.02), match=prompt)
    posted = await owner.post(f"{base}/messages", {"message": prompt})
    reply_id = posted.json()["assistant_message"]["id"]
    await guest_socket.wait_for(lambda e: e["event"] == "message.chunk")

    removed = await owner.delete(f"{base}/members/{guest.id}")
    assert removed.status_code == 200, removed.text
    new_channel = f"private-{removed.json()['conversation']['channel']}"
    assert new_channel != old_channel
    notice = await guest_socket.wait_for(lambda e: e["event"] == "member.removed")
    heard_before = len([e for e in guest_socket.events if e["event"] in LIVE])
    # The owner moves to the new channel; the reply's remaining chunks go there only.
    await owner_socket.subscribe(owner, new_channel)
    final = await owner_socket.completed(reply_id)
    assert final["content"] == "x" * 200
    await owner.post(f"{base}/messages", {"message": "after the removal"})
    await asyncio.sleep(0.5)
    assert notice["data"] == {"conversation_id": conversation["id"], "user_id": guest.id}
    assert len([e for e in guest_socket.events if e["event"] in LIVE]) == heard_before
    assert not any(e["event"] == "message.completed" for e in guest_socket.events)
    for channel in (old_channel, new_channel):
        refused = await guest.channel_auth(guest_socket.socket_id, channel)
        assert refused.status_code == 403
    assert (await guest.get(base)).status_code == 403
    await guest_socket.close()
    await owner_socket.close()


async def test_members_may_leave_and_only_the_owner_removes_others(
    http: httpx.AsyncClient,
) -> None:
    owner, first, second = (await register(http), await register(http),
                            await register(http))
    conversation = await owner.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    for member in (first, second):
        await owner.post(f"{base}/members", {"email": member.email})
    assert (await first.delete(f"{base}/members/{second.id}")).status_code == 403
    assert (await first.delete(f"{base}/members/{owner.id}")).status_code == 403
    assert (await owner.delete(f"{base}/members/{owner.id}")).status_code == 422
    left = await first.delete(f"{base}/members/{first.id}")
    assert left.status_code == 200 and left.json()["success"] is True
    assert (await first.get(base)).status_code == 403
    assert [m["id"] for m in left.json()["conversation"]["members"]] == [owner.id, second.id]
    assert (await owner.delete(f"{base}/members/{first.id}")).status_code == 404
