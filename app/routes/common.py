"""What every route needs: the signed-in user, path ids, the caller's socket id."""

from __future__ import annotations

import re

from sqlmodel import Session
from starlette.requests import Request

from app.container import services_of
from app.errors import not_found, unauthenticated
from app.models import Conversation, User
from app.policies import conversation_for
from app.services.publisher import valid_socket_id

_ID = re.compile(r"[1-9][0-9]{0,17}")


async def current_user(request: Request) -> User:
    """The user of the request's bearer token or session cookie; 401 when there is none."""
    services = services_of(request)
    credential = services.tokens.credential_from(request)
    if credential is None:
        raise unauthenticated()
    user = await services.db.run(lambda session: session.get(User, credential.user_id))
    # A credential issued before the last logout carries an older version: it is revoked.
    if user is None or user.token_version != credential.version:
        raise unauthenticated()
    return user


async def participant(request: Request, name: str = "conversation_id") -> tuple[User, Conversation]:
    """The signed-in user and the conversation of path parameter `name`, read in one round trip.

    401 without a valid credential, 404 for a malformed or unknown id, 403 for a conversation the
    user takes no part in. Used on the busy paths (posting, typing).
    """
    services = services_of(request)
    credential = services.tokens.credential_from(request)
    if credential is None:
        raise unauthenticated()
    conversation_id = path_id(request, name)

    def load(session: Session) -> tuple[User, Conversation]:
        user = session.get(User, credential.user_id)
        if user is None or user.token_version != credential.version:
            raise unauthenticated()
        return user, conversation_for(session, user, conversation_id)

    return await services.db.run(load)


def path_id(request: Request, name: str) -> int:
    """A positive integer path parameter; 404 for anything else (as an unknown id would be)."""
    raw = str(request.path_params.get(name, ""))
    # ASCII digits only: `str.isdigit()` also accepts "²" or "٣", which `int()` then rejects
    # or reads as another number. At most 18 digits keeps it below 2^63 (a BIGINT).
    if _ID.fullmatch(raw) is None:
        raise not_found()
    return int(raw)


def caller_socket_id(request: Request) -> str | None:
    """The caller's own socket (`X-Socket-ID`), left out of events it caused (`toOthers`)."""
    return valid_socket_id(request.headers.get("x-socket-id"))
