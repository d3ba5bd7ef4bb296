"""Whether a WebSocket that asked for `/app/{key}` may become a Pusher connection."""

from __future__ import annotations

from broadcaster.protocol.apps import App, origin_allowed
from broadcaster.protocol.errors import (
    AppDisabled,
    AppNotFound,
    MissingProtocol,
    OriginNotAllowed,
    PusherError,
    ServerClosing,
    UnsupportedProtocol,
)
from broadcaster.protocol.http_api import parse_query

SUPPORTED_PROTOCOLS = frozenset({"5", "6", "7"})


def admission_refusal(app: App | None, query: str, origin: str | None,
                      accepting: bool = True) -> PusherError | None:
    """The error to close a new socket with, or None to let it in.

    Checked in the order clients can act on: unknown app (4001), disabled app (4003), protocol
    version missing (4008) or unsupported (4007), origin (4009), server shutting down (4200).
    The connection quota is the hub's to count and is checked afterwards.
    """
    if app is None:
        return AppNotFound("Application does not exist")
    if not app.enabled:
        return AppDisabled("Application is disabled")
    protocol = parse_query(query).get("protocol")
    if not protocol:
        return MissingProtocol("No protocol version supplied")
    if protocol not in SUPPORTED_PROTOCOLS:
        return UnsupportedProtocol(f"Unsupported protocol version {protocol[:10]}")
    if not origin_allowed(app, origin):
        return OriginNotAllowed("Origin not allowed")
    if not accepting:
        return ServerClosing("Server is shutting down")
    return None
