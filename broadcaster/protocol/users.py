"""User sign-in (`pusher:signin`) and watchlist rules.

A socket signs in with `auth = key:HMAC(socket_id::user::user_data)`; `user_data` is the JSON
string the app's authentication endpoint signed, with a non-empty string `id` and optionally a
`watchlist` of user ids whose online/offline changes the socket wants to hear about.
"""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.protocol.apps import App
from broadcaster.protocol.encoding import parse_json
from broadcaster.protocol.errors import PusherError, SigninFailed, WatchlistTooLarge
from broadcaster.protocol.presence import MAX_USER_ID_LENGTH
from broadcaster.protocol.signatures import verify_user_auth

MAX_WATCHLIST = 100


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """Who a socket signed in as. `user_data` is kept as the exact string that was signed."""

    id: str
    user_data: str
    watchlist: tuple[str, ...] = ()


def parse_signin(app: App, socket_id: str, auth: str | None,
                 user_data: str | None) -> SignedInUser:
    """Check a `pusher:signin`; the user it signs in, or an error.

    Raises `SigninFailed` (4009, closes) for a missing or wrong signature and for user_data
    that is not a JSON object with a non-empty string `id`, and `WatchlistTooLarge` (4302, the
    socket stays open and is not signed in) for a watchlist over `MAX_WATCHLIST` ids. The
    signature is checked first, so unsigned input is never parsed further than needed.
    """
    if auth is None or user_data is None:
        raise SigninFailed("pusher:signin needs string 'auth' and 'user_data'")
    if not verify_user_auth(app.key, app.secret, socket_id, user_data, auth):
        raise SigninFailed(
            f"Invalid signature: expected HMAC SHA256 hex digest of {socket_id}::user::<user_data>"
        )
    try:
        data = parse_json(user_data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SigninFailed("user_data must be a JSON object")
    user_id = data.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise SigninFailed("user_data.id must be a non-empty string")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise SigninFailed(f"user_data.id is longer than {MAX_USER_ID_LENGTH} characters")
    return SignedInUser(user_id, user_data, _watchlist(data.get("watchlist")))


def _watchlist(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SigninFailed("user_data.watchlist must be a list of user id strings")
    if len(value) > MAX_WATCHLIST:
        raise WatchlistTooLarge(
            f"Watchlist limit exceeded: {len(value)} ids, at most {MAX_WATCHLIST}"
        )
    # Duplicates would announce the same user twice; order is kept for predictable frames.
    return tuple(dict.fromkeys(value))


def signin_overdue(now: float, connected_at: float, signed_in: bool,
                   timeout: float | None) -> PusherError | None:
    """The error to close a socket with when it has not signed in within `timeout` seconds.

    `timeout` None means sign-in is optional (the default).
    """
    if timeout is None or signed_in or now - connected_at < timeout:
        return None
    return SigninFailed(f"Connection not signed in within {timeout:g} seconds")
