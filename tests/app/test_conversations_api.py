"""Conversations over REST: create, list, show with paging, invite, delete, and who may do what."""

from __future__ import annotations

import httpx

from tests.app.client import register


async def test_create_validates_and_applies_defaults(http: httpx.AsyncClient) -> None:
    user = await register(http)
    created = await user.post("/api/conversations", {})
    assert created.status_code == 201
    conversation = created.json()["conversation"]
    assert conversation["title"] == "New conversation"
    assert conversation["model"] == "claude-sonnet-4-5"
    assert conversation["owner_id"] == user.id and conversation["messages_count"] == 0
    assert conversation["members"] == [{"id": user.id, "name": user.name, "email": user.email}]
    assert conversation["created_at"].endswith("+00:00")
    invalid = await user.post("/api/conversations", {
        "model": "gpt-4", "system_prompt": "x" * 10_001, "title": "t" * 300})
    assert invalid.status_code == 422
    assert set(invalid.json()["errors"]) == {"model", "system_prompt", "title"}
    fine = await user.post("/api/conversations", {"model": "claude-haiku-4-5",
                                                  "system_prompt": "x" * 10_000})
    assert fine.status_code == 201
    too_long = await user.post(f"/api/conversations/{conversation['id']}/messages",
                               {"message": "y" * 50_001})
    assert too_long.status_code == 422 and "message" in too_long.json()["errors"]
    empty = await user.post(f"/api/conversations/{conversation['id']}/messages", {"message": ""})
    assert empty.status_code == 422


async def test_list_is_paginated_newest_first_with_counts(http: httpx.AsyncClient) -> None:
    user, other = await register(http), await register(http)
    await other.new_conversation(title="not mine")
    ids = [(await user.new_conversation(title=f"room {i}"))["id"] for i in range(23)]
    await user.post(f"/api/conversations/{ids[0]}/messages", {"message": "bump"})

    first = (await user.get("/api/conversations")).json()
    assert first["meta"] == {"current_page": 1, "per_page": 20, "total": 23, "last_page": 2}
    assert first["data"][0]["id"] == ids[0] and first["data"][0]["messages_count"] == 2
    assert [c["id"] for c in first["data"][1:]] == ids[:0:-1][:19]
    second = (await user.get("/api/conversations", params={"page": 2})).json()
    assert [c["id"] for c in second["data"]] == ids[3:0:-1]
    assert (await user.get("/api/conversations", params={"page": "x"})).status_code == 422


async def test_show_pages_back_through_messages(http: httpx.AsyncClient) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    for i in range(30):
        posted = await user.post(f"{base}/messages", {"message": f"message {i}"})
        assert posted.status_code == 202
    shown = (await user.get(base)).json()
    assert shown["conversation"]["messages_count"] == 60
    messages = shown["messages"]
    assert len(messages) == 50
    users = [m for m in messages if m["role"] == "user"]
    assert users[-1]["content"] == "message 29" and users[-1]["user_name"] == user.name
    older = (await user.get(base, params={"before": messages[0]["id"], "limit": 5})).json()
    assert [m["id"] for m in older["messages"]] == [m - 5 + messages[0]["id"] for m in range(5)]
    assert (await user.get(base, params={"limit": 0})).status_code == 422


async def test_unknown_ids_are_404_and_others_rooms_403(http: httpx.AsyncClient) -> None:
    user, other = await register(http), await register(http)
    theirs = await other.new_conversation()
    assert (await user.get("/api/conversations/999999999")).status_code == 404
    assert (await user.get("/api/conversations/abc")).status_code == 404
    assert (await user.delete("/api/conversations/999999999")).status_code == 404
    assert (await user.get(f"/api/conversations/{theirs['id']}")).status_code == 403
    assert (await user.post(f"/api/conversations/{theirs['id']}/members",
                            {"email": user.email})).status_code == 403
    own = await user.new_conversation()
    missing = await user.post(f"/api/conversations/{own['id']}/messages/999999999/cancel")
    assert missing.status_code == 404


async def test_members_share_the_room_but_only_the_owner_manages_it(
    http: httpx.AsyncClient,
) -> None:
    owner, guest, third = await register(http), await register(http), await register(http)
    conversation = await owner.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    assert (await owner.post(f"{base}/members", {"email": "nobody@example.com"})
            ).status_code == 422
    invited = await owner.post(f"{base}/members", {"email": guest.email.upper()})
    assert invited.status_code == 201
    members = invited.json()["conversation"]["members"]
    assert [m["id"] for m in members] == [owner.id, guest.id]
    again = await owner.post(f"{base}/members", {"email": guest.email})
    assert len(again.json()["conversation"]["members"]) == 2

    assert (await guest.get(base)).status_code == 200
    assert (await guest.post(f"{base}/messages", {"message": "hi all"})).status_code == 202
    assert [c["id"] for c in (await guest.get("/api/conversations")).json()["data"]] == [
        conversation["id"]]
    assert (await guest.post(f"{base}/members", {"email": third.email})).status_code == 403
    assert (await guest.delete(base)).status_code == 403


async def test_delete_removes_the_conversation_and_its_messages(http: httpx.AsyncClient) -> None:
    user = await register(http)
    conversation = await user.new_conversation()
    base = f"/api/conversations/{conversation['id']}"
    await user.post(f"{base}/messages", {"message": "soon gone"},
                    headers={"Idempotency-Key": "k1"})
    deleted = await user.delete(base)
    assert deleted.status_code == 200 and deleted.json() == {"success": True, "deleted": True}
    assert (await user.get(base)).status_code == 404
    assert (await user.post(f"{base}/messages", {"message": "x"})).status_code == 404
    assert (await user.get("/api/conversations")).json()["meta"]["total"] == 0
