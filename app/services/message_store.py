"""Every write to messages, and the reads that page them: the one home of the message lifecycle.

A turn's two messages are created here, a reply's progress and end are saved here, and
messages leave with their conversation here; nothing else changes a message row.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, update
from sqlmodel import Session, col, select

from app.models import Conversation, Message, MessageStatus, User, utcnow
from app.serializers import message_json


def add_turn(
    session: Session, conversation_id: int, user_id: int, text: str, now: datetime
) -> tuple[Message, Message]:
    """Add the user's message and the reply's streaming placeholder (flushed, not committed:
    the caller commits them together with whatever records the turn)."""
    user_message = Message(
        conversation_id=conversation_id, user_id=user_id, role="user", content=text,
        status=MessageStatus.COMPLETE, completed_at=now, created_at=now, updated_at=now,
    )
    placeholder = Message(
        conversation_id=conversation_id, user_id=None, role="assistant", content="",
        status=MessageStatus.STREAMING, created_at=now, updated_at=now,
    )
    # One flush inserts both in the order added: the user's message gets the smaller id, so it
    # sorts first at equal times.
    session.add(user_message)
    session.add(placeholder)
    session.flush()
    return user_message, placeholder


def add_complete(session: Session, conversation_id: int, role: str, content: str) -> Message:
    """Add a finished message (e.g. a welcome note); the caller commits."""
    message = Message(conversation_id=conversation_id, role=role, content=content,
                      status=MessageStatus.COMPLETE, completed_at=utcnow())
    session.add(message)
    return message


def delete_all(session: Session, conversation_id: int) -> None:
    """Delete a conversation's messages (explicitly: no reliance on ON DELETE CASCADE)."""
    session.execute(delete(Message).where(col(Message.conversation_id) == conversation_id))


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
        or_(col(Message.id) > since_id, col(Message.status) == MessageStatus.STREAMING),
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


def save_progress_many(session: Session, progress: dict[int, tuple[str, int]]) -> None:
    """Store the text streamed so far of replies still streaming: `{message_id: (content, seq)}`,
    in one statement (executemany) and one commit; replies that ended are left as they are."""
    if not progress:
        return
    now = utcnow()
    table = Message.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table)
        .where(table.c.id == bindparam("message_id"),
               table.c.status == MessageStatus.STREAMING.value)
        .values(content=bindparam("new_content"), seq=bindparam("new_seq"), updated_at=now),
        [{"message_id": message_id, "new_content": content, "new_seq": seq}
         for message_id, (content, seq) in progress.items()],
    )
    session.commit()


def finish_message(
    session: Session,
    message_id: int,
    *,
    status: MessageStatus,
    content: str | None,
    seq: int | None,
    error: str | None,
) -> dict[str, Any] | None:
    """End a streaming reply with `status`; None when it no longer exists or already ended.

    `content`/`seq` None keep what is stored (used when no stream is running any more).
    """
    message = session.get(Message, message_id)
    if message is None or message.status is not MessageStatus.STREAMING:
        return None
    now = utcnow()
    if content is not None and seq is not None:
        message.content, message.seq = content, seq
    message.status = status
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


def streaming_ids(session: Session) -> list[int]:
    """The ids of every reply stored as streaming."""
    ids = session.exec(select(Message.id).where(col(Message.status) == MessageStatus.STREAMING))
    return [i for i in ids.all() if i is not None]


def fail_interrupted(session: Session, alive: Collection[int] = ()) -> int:
    """Mark replies left streaming by a previous run of the app as failed, except those in
    `alive` (streamed by another process right now); returns how many."""
    now = utcnow()
    query = update(Message).where(col(Message.status) == MessageStatus.STREAMING)
    if alive:
        query = query.where(col(Message.id).not_in(list(alive)))
    result = session.execute(
        query
        .values(
            status=MessageStatus.FAILED,
            error="The server restarted before the reply was complete.",
            completed_at=now,
            updated_at=now,
        )
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
