"""Channel kinds by name prefix, and name validation."""

from __future__ import annotations

import enum
import re

MAX_CHANNEL_NAME = 200
MAX_EVENT_NAME = 200
USER_CHANNEL_PREFIX = "#server-to-user-"
_CACHE_PREFIXES = ("cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-")
# Channels a publish must treat specially (user channels, cache channels): one C-level
# `startswith` tells the common channel apart on the hot path.
SPECIAL_PREFIXES = (USER_CHANNEL_PREFIX, *_CACHE_PREFIXES)

# Pusher's documented character set; '#' only as the leading character of server-reserved names.
_CHANNEL_NAME = re.compile(r"^#?[-a-zA-Z0-9_=@,.;]+$")


class ChannelKind(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    ENCRYPTED = "private-encrypted"
    PRESENCE = "presence"

    @property
    def needs_auth(self) -> bool:
        return self is not ChannelKind.PUBLIC

    @property
    def allows_client_events(self) -> bool:
        # Pusher relays client events on private and presence channels only; encrypted channels
        # are private channels too, but the payload is opaque to us.
        return self is not ChannelKind.PUBLIC


def channel_kind(name: str) -> ChannelKind:
    """The kind of channel `name` is; prefixes count only at the very start of the name."""
    if name.startswith("private-encrypted-"):
        return ChannelKind.ENCRYPTED
    if name.startswith("private-"):
        return ChannelKind.PRIVATE
    if name.startswith("presence-"):
        return ChannelKind.PRESENCE
    return ChannelKind.PUBLIC


def is_cache_channel(name: str) -> bool:
    """Whether `name` is a cache channel (its last event is replayed to new subscribers).

    Cache-ness is independent of the kind: `private-cache-x` is still authorized as private.
    """
    return name.startswith(_CACHE_PREFIXES)


def user_channel(user_id: str) -> str:
    """The server-to-user channel of a signed-in user."""
    return USER_CHANNEL_PREFIX + user_id


def user_of_channel(name: str) -> str | None:
    """The user id a `#server-to-user-{id}` channel addresses, or None for any other channel."""
    if name.startswith(USER_CHANNEL_PREFIX) and len(name) > len(USER_CHANNEL_PREFIX):
        return name[len(USER_CHANNEL_PREFIX):]
    return None


def channel_name_problem(name: object) -> str | None:
    """Why `name` is not a valid channel name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "Channel name must be a non-empty string"
    if len(name) > MAX_CHANNEL_NAME:
        return f"Channel name is longer than {MAX_CHANNEL_NAME} characters"
    if not _CHANNEL_NAME.match(name):
        return "Channel name contains characters outside [-a-zA-Z0-9_=@,.;]"
    return None


def event_name_problem(name: object) -> str | None:
    """Why `name` is not a valid event name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "Event name must be a non-empty string"
    if len(name) > MAX_EVENT_NAME:
        return f"Event name is longer than {MAX_EVENT_NAME} characters"
    return None
