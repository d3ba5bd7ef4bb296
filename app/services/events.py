"""Channel names and the events the app broadcasts, with their payloads kept within size limits."""

from __future__ import annotations

import json
from typing import Any

MESSAGE_CREATED = "message.created"
MESSAGE_CHUNK = "message.chunk"
MESSAGE_COMPLETED = "message.completed"
USER_TYPING = "user.typing"

PRIVATE_PREFIX = "private-conversation."
PRESENCE_PREFIX = "presence-conversation."


def private_channel(conversation_id: int) -> str:
    return f"{PRIVATE_PREFIX}{conversation_id}"


def presence_channel(conversation_id: int) -> str:
    return f"{PRESENCE_PREFIX}{conversation_id}"


def conversation_id_of(channel: str) -> int | None:
    """The conversation id of one of our channels, or None for any other channel name."""
    for prefix in (PRIVATE_PREFIX, PRESENCE_PREFIX):
        if channel.startswith(prefix):
            tail = channel[len(prefix) :]
            return int(tail) if tail.isdigit() and not tail.startswith("0") else None
    return None


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
    return {"user": {"id": user_id, "name": user_name}, "is_typing": is_typing}
