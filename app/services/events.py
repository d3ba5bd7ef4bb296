"""Channel names and the events the app broadcasts, with their payloads kept within size limits."""

from __future__ import annotations

import json
import re
from typing import Any

MESSAGE_CREATED = "message.created"
MESSAGE_CHUNK = "message.chunk"
MESSAGE_COMPLETED = "message.completed"
USER_TYPING = "user.typing"
# Sent on the channels a conversation leaves behind, so that honest clients let go of them; the
# rotated channel token is what actually stops a client that ignores these.
CONVERSATION_DELETED = "conversation.deleted"
MEMBER_REMOVED = "member.removed"

PRIVATE_PREFIX = "private-"
PRESENCE_PREFIX = "presence-"
# `conversation.{id}.{token}`: ASCII digits only (no Unicode digits, no leading zero, < 2^63),
# and the conversation's current 32-hex-digit channel token.
_CHANNEL = re.compile(r"(?:private|presence)-conversation\.([1-9][0-9]{0,17})\.([0-9a-f]{32})")


def channel_stem(conversation_id: int, token: str) -> str:
    """The channel name without its prefix, as Laravel Echo's `private()`/`join()` take it."""
    return f"conversation.{conversation_id}.{token}"


def private_channel(conversation_id: int, token: str) -> str:
    return f"{PRIVATE_PREFIX}{channel_stem(conversation_id, token)}"


def presence_channel(conversation_id: int, token: str) -> str:
    return f"{PRESENCE_PREFIX}{channel_stem(conversation_id, token)}"


def parse_channel(channel: str) -> tuple[int, str] | None:
    """(conversation id, token) of one of our channel names, or None for any other name."""
    match = _CHANNEL.fullmatch(channel)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def message_event(message: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """`{"message": message}`, with `content` cut to fit `max_bytes` if it must be.

    Broadcasters cap an event's data (10 KB by default); a message too long for one event is sent
    with the longest prefix that fits and `content_truncated: true`, and clients fetch the full
    text over REST (the streamed chunks already carried all of it).
    """
    data = {"message": message}
    if _size(data) <= max_bytes:
        return data
    content = str(message.get("content") or "")
    overhead = _size({"message": {**message, "content": "", "content_truncated": True}})
    budget = max(0, max_bytes - overhead)
    # Each character is at most 4 bytes in UTF-8 and at most 6 once JSON-escaped.
    low, high = 0, min(len(content), budget)
    while low < high:
        middle = (low + high + 1) // 2
        fits = _size({"c": content[:middle]}) - _size({"c": ""}) <= budget
        low, high = (middle, high) if fits else (low, middle - 1)
    return {"message": {**message, "content": content[:low], "content_truncated": True}}


def chunk_event(message_id: int, chunk: str, seq: int) -> dict[str, Any]:
    return {"message_id": message_id, "chunk": chunk, "seq": seq}


def typing_event(user_id: int, user_name: str, is_typing: bool) -> dict[str, Any]:
    """The seed's `{user_id, user_name, is_typing}`, plus `user` for clients of earlier versions."""
    return {
        "user_id": user_id,
        "user_name": user_name,
        "is_typing": is_typing,
        "user": {"id": user_id, "name": user_name},
    }
