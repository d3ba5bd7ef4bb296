"""The JSON shapes of users, conversations and messages, shared by the API and the events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.models import Conversation, Message, MessageStatus, User
from app.services.events import channel_stem


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with an explicit offset; SQLite returns naive datetimes, which are UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email}


def message_json(message: Message, author: User | None = None) -> dict[str, Any]:
    """A message as every response and event carries it; `author` names a user message's writer."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "status": MessageStatus(message.status).value,
        # Derived, for clients that read it (the seed has it); `status` is the record.
        "is_streaming": message.status == MessageStatus.STREAMING,
        "seq": message.seq,
        "error": message.error,
        "user_id": message.user_id,
        "user_name": author.name if author is not None else None,
        "metadata": message.meta,
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
        "completed_at": iso(message.completed_at),
    }


def conversation_json(
    conversation: Conversation,
    *,
    messages_count: int,
    members: list[User] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "owner_id": conversation.owner_id,
        "user_id": conversation.owner_id,  # the seed's name for the owner
        "metadata": conversation.meta,
        "messages_count": messages_count,
        # Only participants ever see this: it is what makes the channel names unguessable.
        "channel": channel_stem(conversation.id or 0, conversation.channel_token),
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
    }
    if members is not None:
        body["members"] = [user_json(member) for member in members]
    return body
