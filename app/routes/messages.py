"""Posting a message (202, reply streams in the background), typing, cancelling a reply."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.container import services_of
from app.errors import ApiError
from app.models import MessageStatus
from app.routes.common import caller_socket_id, participant, path_id
from app.serializers import message_json
from app.services import message_store, turns
from app.services.chat import ReplySlot
from app.services.events import (
    MESSAGE_COMPLETED,
    USER_TYPING,
    message_event,
    presence_channel,
    private_channel,
    typing_event,
)
from app.validation import Fields, read_body

MAX_MESSAGE = 50_000
MAX_IDEMPOTENCY_KEY = 255


async def post_message(request: Request) -> Response:
    """Store the message and start the reply (202); 429 past the user's posting limits."""
    # Authorization comes first, so outsiders learn nothing from field errors.
    user, conversation = await participant(request)
    conversation_id = path_id(request, "conversation_id")
    services = services_of(request)
    fields = Fields(await read_body(request))
    text = fields.text("message", max_length=MAX_MESSAGE, strip=False)
    key = request.headers.get("idempotency-key", "").strip() or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        fields.add_error("Idempotency-Key", f"must be at most {MAX_IDEMPOTENCY_KEY} characters.")
    fields.done()
    assert text is not None and user.id is not None
    user_id = user.id
    reservation = await services.chat.reserve(user_id)
    if reservation.slot is ReplySlot.SERVER_BUSY:
        # Shed before storing anything: the client retries later and nothing is half-done.
        raise ApiError(503, "The server is writing as many replies as it can; try again shortly.",
                       headers={"Retry-After": "1"})
    if reservation.slot is ReplySlot.USER_BUSY:
        raise ApiError(429, "Too many replies are being written for you; wait for one to end.",
                       headers={"Retry-After": "2"})
    started = False
    try:
        retry_after = await services.state.hit(services.limits.message, str(user_id))
        if retry_after is not None:
            raise ApiError(429, "Too many messages; slow down.",
                           headers={"Retry-After": str(retry_after)})
        posted = await services.db.run(
            lambda s: turns.post_message(s, user, conversation_id, text, key,
                                         services.settings.max_tokens)
        )
        if posted.created:
            await services.chat.start_reply(
                conversation_id,
                conversation.channel_token,
                reservation,
                posted.body["user_message"],
                posted.body["assistant_message"],
                caller_socket_id(request),
                posted.request,
            )
            started = True
    finally:
        if not started:
            await services.chat.unreserve(reservation)
    headers = {} if posted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(posted.body, posted.status_code, headers=headers)


async def typing(request: Request) -> Response:
    user, conversation = await participant(request)
    conversation_id = path_id(request, "conversation_id")
    services = services_of(request)
    fields = Fields(await read_body(request))
    is_typing = fields.boolean("is_typing")
    fields.done()
    retry_after = await services.state.hit(services.limits.typing, f"{user.id}:{conversation_id}")
    if retry_after is not None:
        raise ApiError(429, "Too many typing updates; slow down.",
                       headers={"Retry-After": str(retry_after)})
    assert user.id is not None
    await services.publisher.trigger(
        [presence_channel(conversation_id, conversation.channel_token)],
        USER_TYPING,
        typing_event(user.id, user.name, is_typing),
        caller_socket_id(request),
    )
    return JSONResponse({"ok": True})


async def cancel_reply(request: Request) -> Response:
    """Stop a streaming reply wherever it streams; it ends `cancelled`, stored and announced."""
    user, conversation = await participant(request)
    conversation_id = path_id(request, "conversation_id")
    message_id = path_id(request, "message_id")
    services = services_of(request)
    message = await services.db.run(
        lambda s: turns.message_in(s, user, conversation_id, message_id)
    )
    if message.status is not MessageStatus.STREAMING:
        raise ApiError(
            409, "This reply is not streaming.", extra={"message": message_json(message)}
        )
    if not await services.chat.cancel(message_id):
        # No process streams it (e.g. one that stopped left it over): end it where it stands.
        ended = await services.db.run(
            lambda s: message_store.finish_message(
                s, message_id, status=MessageStatus.CANCELLED, content=None, seq=None, error=None
            )
        )
        if ended is not None:
            await services.publisher.trigger(
                [private_channel(conversation_id, conversation.channel_token)],
                MESSAGE_COMPLETED,
                message_event(ended, services.settings.broadcast_max_data_bytes),
            )
    final = await services.db.run(
        lambda s: message_store.messages_json(s, [turns.message_in(s, user, conversation_id,
                                                                   message_id)])
    )
    return JSONResponse({"message": final[0]})


routes = [
    Route("/api/conversations/{conversation_id}/messages", post_message, methods=["POST"]),
    Route("/api/conversations/{conversation_id}/typing", typing, methods=["POST"]),
    Route(
        "/api/conversations/{conversation_id}/messages/{message_id}/cancel",
        cancel_reply,
        methods=["POST"],
    ),
]
