"""Conversations: list, create, show (with message paging and catch-up), delete, invite."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.container import services_of
from app.errors import validation_failed
from app.routes.common import current_user, path_id
from app.services import conversations
from app.services.events import (
    CONVERSATION_DELETED,
    MEMBER_REMOVED,
    presence_channel,
    private_channel,
)
from app.shared_state import SharedStateUnavailable
from app.validation import Fields, int_param, read_body

logger = logging.getLogger("app")

MAX_SYSTEM_PROMPT = 10_000


async def list_conversations(request: Request) -> Response:
    user = await current_user(request)
    page = int_param(request.query_params.get("page"), "page", default=1, minimum=1,
                     maximum=1_000_000)
    body = await services_of(request).db.run(lambda s: conversations.list_page(s, user, page))
    return JSONResponse(body)


async def create_conversation(request: Request) -> Response:
    user = await current_user(request)
    services = services_of(request)
    fields = Fields(await read_body(request))
    title = fields.text("title", required=False, max_length=255) or "New conversation"
    model = fields.choice("model", services.settings.models, services.settings.default_model)
    system_prompt = fields.text(
        "system_prompt", required=False, max_length=MAX_SYSTEM_PROMPT, strip=False
    )
    fields.done()
    body = await services.db.run(
        lambda s: conversations.create(s, user, title, model, system_prompt)
    )
    return JSONResponse({"conversation": body}, 201)


async def show_conversation(request: Request) -> Response:
    user = await current_user(request)
    conversation_id = path_id(request, "conversation_id")
    query = request.query_params
    limit = int_param(query.get("limit"), "limit", default=50, minimum=1, maximum=200)
    before = query.get("before")
    since = query.get("since")
    before_id = (int_param(before, "before", default=0, minimum=1, maximum=2**62)
                 if before else None)
    since_id = int_param(since, "since", default=0, minimum=0, maximum=2**62) if since else None
    body = await services_of(request).db.run(
        lambda s: conversations.show(
            s, user, conversation_id, limit=limit, before=before_id, since=since_id
        )
    )
    return JSONResponse(body)


async def delete_conversation(request: Request) -> Response:
    user = await current_user(request)
    conversation_id = path_id(request, "conversation_id")
    services = services_of(request)
    deleted = await services.db.run(
        lambda s: conversations.delete_owned(s, user, conversation_id)
    )
    for message_id in deleted.streaming:
        try:
            await services.chat.cancel(message_id, reason="The conversation was deleted.")
        except SharedStateUnavailable:
            # Deleted already, and announced below. The reply streams on in its process until
            # it ends (nothing is stored then: the row is gone), which the warning reports.
            logger.warning("could not stop reply %s of a deleted conversation", message_id)
    await services.publisher.trigger(
        [private_channel(conversation_id, deleted.channel_token),
         presence_channel(conversation_id, deleted.channel_token)],
        CONVERSATION_DELETED, {"conversation_id": conversation_id},
    )
    return JSONResponse({"success": True, "deleted": True})


async def remove_member(request: Request) -> Response:
    """`DELETE .../members/{user_id}`: the owner removes a member, or a member leaves.

    The remaining participants are told on the old channels (`member.removed`) and fetch the
    conversation again for its new channel; the removed user's subscriptions go silent.
    """
    user = await current_user(request)
    conversation_id = path_id(request, "conversation_id")
    member_id = path_id(request, "user_id")
    services = services_of(request)
    removed = await services.db.run(
        lambda s: conversations.remove_member(s, user, conversation_id, member_id)
    )
    await services.chat.retarget(conversation_id, removed.new_token)
    await services.publisher.trigger(
        [private_channel(conversation_id, removed.old_token),
         presence_channel(conversation_id, removed.old_token)],
        MEMBER_REMOVED, {"conversation_id": conversation_id, "user_id": member_id},
    )
    return JSONResponse({"success": True, "conversation": removed.conversation})


async def invite_member(request: Request) -> Response:
    user = await current_user(request)
    conversation_id = path_id(request, "conversation_id")
    fields = Fields(await read_body(request))
    email = fields.text("email", max_length=255, email=True)
    fields.done()
    assert email is not None
    try:
        body = await services_of(request).db.run(
            lambda s: conversations.invite(s, user, conversation_id, email)
        )
    except conversations.InviteError as exc:
        raise validation_failed({"email": [exc.field_message]}) from None
    return JSONResponse({"conversation": body}, 201)


routes = [
    Route("/api/conversations", list_conversations, methods=["GET"]),
    Route("/api/conversations", create_conversation, methods=["POST"]),
    Route("/api/conversations/{conversation_id}", show_conversation, methods=["GET"]),
    Route("/api/conversations/{conversation_id}", delete_conversation, methods=["DELETE"]),
    Route("/api/conversations/{conversation_id}/members", invite_member, methods=["POST"]),
    Route("/api/conversations/{conversation_id}/members/{user_id}", remove_member,
          methods=["DELETE"]),
]
