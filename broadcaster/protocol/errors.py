"""Pusher protocol errors, each carrying its wire form.

Codes follow the Pusher protocol documentation. The range tells pusher-js what to do after a
close: 4000-4099 do not reconnect, 4100-4199 reconnect with back-off, 4200-4299 reconnect at once.
"""

from __future__ import annotations

import json


class PusherError(Exception):
    """An error sent to a client as `pusher:error`; `close`: whether the socket closes after it."""

    code: int = 4200
    close: bool = False

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_frame(self) -> str:
        """The `pusher:error` text frame for this error."""
        payload = json.dumps({"code": self.code, "message": self.message})
        return json.dumps({"event": "pusher:error", "data": payload})


class AppNotFound(PusherError):
    code = 4001
    close = True


class AppDisabled(PusherError):
    code = 4003
    close = True


class OverConnectionQuota(PusherError):
    code = 4004
    close = True


class UnsupportedProtocol(PusherError):
    code = 4007
    close = True


class MissingProtocol(PusherError):
    code = 4008
    close = True


class OriginNotAllowed(PusherError):
    code = 4009
    close = True


class Unauthorized(PusherError):
    """Refused access without closing (e.g. a client event on a channel the socket is not in)."""

    code = 4009


class SigninFailed(PusherError):
    """A `pusher:signin` with a bad signature or user_data, or none within the app's timeout."""

    code = 4009
    close = True


class UserTerminated(PusherError):
    """The app asked (HTTP API `terminate_connections`) to disconnect this signed-in user."""

    code = 4009
    close = True


class WatchlistTooLarge(PusherError):
    """A sign-in whose `user_data.watchlist` lists more ids than allowed; the socket stays open."""

    code = 4302


class InvalidMessage(PusherError):
    """A malformed or unknown frame. Reverb answers these with 4200 and keeps the socket open."""

    code = 4200


class MessageTooLarge(PusherError):
    code = 4200


class ClientEventRejected(PusherError):
    """A client event that is not allowed, or over the per-connection rate limit."""

    code = 4301


class PongNotReceived(PusherError):
    code = 4201
    close = True


class ServerClosing(PusherError):
    code = 4200
    close = True


class SubscriptionError(Exception):
    """A refused subscription, sent as `pusher:subscription_error` on that channel.

    Laravel Echo's `.error()` listens for exactly this event; the socket stays open.
    """

    def __init__(self, channel: str, message: str, *, status: int = 401, kind: str = "AuthError"):
        super().__init__(message)
        self.channel = channel
        self.message = message
        self.status = status
        self.kind = kind

    def to_frame(self) -> str:
        """The `pusher:subscription_error` text frame."""
        return json.dumps(
            {
                "event": "pusher:subscription_error",
                "channel": self.channel,
                "data": {"type": self.kind, "error": self.message, "status": self.status},
            }
        )
