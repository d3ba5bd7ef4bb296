"""Database work for messages: creating a turn, paging, saving a streaming reply's progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from app.models import Conversation, Message, User, utcnow
from app.serializers import message_json
from app.services.llm import ReplyRequest, Role, Turn

HISTORY_LIMIT = 200


def messages_json(session: Session, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Serialize messages, naming the author of each user message."""
    author_ids = {m.user_id for m in messages if m.user_id is not None}
    authors = {
        u.id: u for u in session.exec(select(User).where(col(User.id).in_(author_ids))).all()
    } if author_ids else {}
    return [message_json(m, authors.get(m.user_id) if m.user_id else None) for m in messages]


def _ordered(query: Any) -> Any:
    return query.order_by(col(Message.created_at), col(Message.id))


def latest_messages(
    session: Session, conversation_id: int, limit: int, before_id: int | None = None
) -> list[Message]:
    """The last `limit` messages (optionally those before `before_id`), oldest first."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before_id is not None:
        query = query.where(col(Message.id) < before_id)
    newest = session.exec(
        query.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(limit)
    ).all()
    return list(reversed(newest))


def messages_since(
    session: Session, conversation_id: int, since_id: int, limit: int
) -> list[Message]:
    """Up to `limit` messages after `since_id`, plus any still streaming, oldest first.

    For catch-up after a reconnect; callers ask again from the newest id they got.
    """
    query = select(Message).where(
        Message.conversation_id == conversation_id,
        or_(col(Message.id) > since_id, col(Message.is_streaming).is_(True)),
    )
    return list(session.exec(_ordered(query).limit(limit)).all())


def count_messages(session: Session, conversation_id: int) -> int:
    return int(
        session.exec(
            select(func.count()).select_from(Message).where(
                Message.conversation_id == conversation_id
            )
        ).one()
    )


def reply_request(
    session: Session, conversation: Conversation, placeholder_id: int, max_tokens: int
) -> ReplyRequest:
    """What to ask the model for the reply `placeholder_id`: the conversation before it.

    Failed and empty replies are left out, system messages join the system prompt, and turns of
    the same role are merged so the roles alternate as the Messages API expects.
    """
    query = select(Message).where(
        Message.conversation_id == conversation.id, col(Message.id) < placeholder_id
    )
    rows = session.exec(
        query.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(HISTORY_LIMIT)
    ).all()
    system_parts = [conversation.system_prompt] if conversation.system_prompt else []
    turns: list[Turn] = []
    for message in reversed(rows):
        if not message.content.strip() or message.status == "failed":
            continue
        if message.role == "system":
            system_parts.append(message.content)
            continue
        role: Role = "user" if message.role == "user" else "assistant"
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].content}\n\n{message.content}")
        else:
            turns.append(Turn(role, message.content))
    while turns and turns[0].role != "user":
        turns.pop(0)
    return ReplyRequest(
        model=conversation.model,
        system_prompt="\n\n".join(system_parts) or None,
        history=turns,
        max_tokens=max_tokens,
    )


def save_progress(session: Session, message_id: int, content: str, seq: int) -> None:
    """Store the text streamed so far of a reply that is still streaming."""
    session.execute(
        update(Message)
        .where(col(Message.id) == message_id, col(Message.is_streaming).is_(True))
        .values(content=content, seq=seq, updated_at=utcnow())
    )
    session.commit()


def finish_message(
    session: Session,
    message_id: int,
    *,
    status: str,
    content: str | None,
    seq: int | None,
    error: str | None,
) -> dict[str, Any] | None:
    """End a streaming reply with `status`; None when it no longer exists or already ended.

    `content`/`seq` None keep what is stored (used when no stream is running any more).
    """
    message = session.get(Message, message_id)
    if message is None or not message.is_streaming:
        return None
    now = utcnow()
    if content is not None and seq is not None:
        message.content, message.seq = content, seq
    message.status = status
    message.is_streaming = False
    message.error = error
    message.completed_at = now
    message.updated_at = now
    session.add(message)
    conversation = session.get(Conversation, message.conversation_id)
    if conversation is not None:
        conversation.updated_at = now
        session.add(conversation)
    session.commit()
    return message_json(message)


def fail_interrupted(session: Session) -> int:
    """Mark replies left streaming by a previous run of the app as failed; returns how many."""
    now = utcnow()
    result = session.execute(
        update(Message)
        .where(col(Message.is_streaming).is_(True))
        .values(
            is_streaming=False,
            status="failed",
            error="The server restarted before the reply was complete.",
            completed_at=now,
            updated_at=now,
        )
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
