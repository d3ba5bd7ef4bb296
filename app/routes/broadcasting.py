"""Channel authorization for Laravel Echo / pusher-js: `/broadcasting/auth` and `/user-auth`."""

from __future__ import annotations

import hmac

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.container import services_of
from app.errors import forbidden
from app.models import Conversation
from app.policies import is_participant
from app.routes.common import current_user
from app.services.channel_auth import presence_auth, private_auth, user_auth
from app.services.events import PRESENCE_PREFIX, parse_channel
from app.services.publisher import valid_socket_id
from app.validation import Fields, read_body


async def _socket_id(fields: Fields) -> str:
    socket_id = fields.text("socket_id", max_length=64)
    if socket_id is not None and valid_socket_id(socket_id) is None:
        fields.add_error("socket_id", "The socket_id must look like 1234.5678.")
    return socket_id or ""


async def authorize_channel(request: Request) -> Response:
    """Sign a subscription to `private-`/`presence-conversation.{id}.{token}`.

    403 for anyone who is neither the owner nor a member, for a token that is not the
    conversation's current one (it changes when someone leaves), and for any other channel name.
    """
    user = await current_user(request)
    fields = Fields(await read_body(request, allow_form=True))
    socket_id = await _socket_id(fields)
    channel = fields.text("channel_name", max_length=200) or ""
    fields.done()
    parsed = parse_channel(channel)
    if parsed is None:
        raise forbidden()
    conversation_id, token = parsed
    services = services_of(request)

    def allowed(session: Session) -> bool:
        # An unknown conversation is refused like a foreign one, so ids cannot be probed.
        conversation = session.get(Conversation, conversation_id)
        return (
            conversation is not None
            and hmac.compare_digest(conversation.channel_token, token)
            and is_participant(session, user, conversation)
        )

    permitted = await services.db.run(allowed)
    if not permitted:
        raise forbidden()
    broadcaster = services.settings.broadcaster
    assert user.id is not None
    if channel.startswith(PRESENCE_PREFIX):
        body = presence_auth(broadcaster.key, broadcaster.secret, socket_id, channel, user.id,
                             {"id": user.id, "name": user.name})
    else:
        body = private_auth(broadcaster.key, broadcaster.secret, socket_id, channel)
    return JSONResponse(body)


async def authenticate_user(request: Request) -> Response:
    """Sign `pusher:signin` for the current user (pusher-js user authentication)."""
    user = await current_user(request)
    fields = Fields(await read_body(request, allow_form=True))
    socket_id = await _socket_id(fields)
    fields.done()
    broadcaster = services_of(request).settings.broadcaster
    assert user.id is not None
    return JSONResponse(user_auth(broadcaster.key, broadcaster.secret, socket_id, user.id,
                                  {"id": user.id, "name": user.name}))


routes = [
    Route("/broadcasting/auth", authorize_channel, methods=["POST"]),
    Route("/broadcasting/user-auth", authenticate_user, methods=["POST"]),
]
