"""What every route needs: the signed-in user, path ids, the caller's socket id."""

from __future__ import annotations

import re

from starlette.requests import Request

from app.container import services_of
from app.errors import not_found, unauthenticated
from app.models import User
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
