"""Presence rosters: a user's first connection adds them, their last connection removes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broadcaster.protocol.encoding import dump_json, parse_json, utf8_size_exceeds
from broadcaster.protocol.errors import SubscriptionError

MAX_USER_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Member:
    """A presence channel member as a subscription announced it."""

    user_id: str
    user_info: Any


def parse_channel_data(channel: str, channel_data: str | None, max_info_size: int) -> Member:
    """The member described by a presence subscription's `channel_data`.

    Raises `SubscriptionError` when it is missing, not JSON, lacks `user_id`, or is too large.
    """
    if channel_data is None:
        raise SubscriptionError(channel, "Presence channels need channel_data", status=400,
                                kind="InvalidChannelData")
    try:
        data = parse_json(channel_data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SubscriptionError(channel, "channel_data must be a JSON object", status=400,
                                kind="InvalidChannelData")
    user_id = data.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
        raise SubscriptionError(channel, "channel_data.user_id must be a string or a number",
                                status=400, kind="InvalidChannelData")
    user_id = str(user_id)
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise SubscriptionError(channel, f"user_id is longer than {MAX_USER_ID_LENGTH} characters",
                                status=400, kind="InvalidChannelData")
    info = data.get("user_info")
    if info is not None and _too_large(info, max_info_size):
        raise SubscriptionError(channel, f"user_info is larger than {max_info_size} bytes",
                                status=413, kind="LimitReached")
    return Member(user_id, info)


def _too_large(info: Any, limit: int) -> bool:
    try:
        return utf8_size_exceeds(dump_json(info), limit)
    except ValueError:  # nested too deeply to measure: certainly not a sensible user_info
        return True


class PresenceRoster:
    """Who is on one presence channel: each user with the sockets they are connected through."""

    __slots__ = ("_info", "_sockets")

    def __init__(self) -> None:
        self._sockets: dict[str, set[str]] = {}
        self._info: dict[str, Any] = {}

    def add(self, socket_id: str, member: Member) -> bool:
        """Record `socket_id` as `member`; True when this is the user's first connection."""
        sockets = self._sockets.get(member.user_id)
        if sockets is None:
            self._sockets[member.user_id] = {socket_id}
            self._info[member.user_id] = member.user_info
            return True
        sockets.add(socket_id)
        return False

    def remove(self, socket_id: str, user_id: str) -> bool:
        """Forget `socket_id`; True when it was the user's last connection."""
        sockets = self._sockets.get(user_id)
        if sockets is None or socket_id not in sockets:
            return False
        sockets.discard(socket_id)
        if sockets:
            return False
        del self._sockets[user_id]
        del self._info[user_id]
        return True

    def has_user(self, user_id: str) -> bool:
        return user_id in self._sockets

    def connection_counts(self) -> dict[str, int]:
        """user_id -> how many sockets the user is present through."""
        return {user_id: len(sockets) for user_id, sockets in self._sockets.items()}

    def members(self) -> dict[str, Any]:
        """user_id -> user_info for every user present."""
        return dict(self._info)

    @property
    def user_count(self) -> int:
        return len(self._sockets)

    def __bool__(self) -> bool:
        return bool(self._sockets)
