"""Posting a message: the user's message and the assistant placeholder, created once per key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.errors import not_found, validation_failed
from app.models import Conversation, IdempotencyRecord, Message, User, utcnow
from app.policies import conversation_for
from app.serializers import message_json
from app.services import message_store, prompt
from app.services.llm import ReplyRequest


@dataclass(frozen=True)
class PostedTurn:
    """The response to a posted message; `created` is False when it replays an earlier one."""

    status_code: int
    body: dict[str, Any]
    created: bool
    # What to ask the model, read in the same session as the turn was stored (one round trip
    # fewer per post); None for a replay.
    request: ReplyRequest | None = None


def request_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _replay(session: Session, user: User, conversation_id: int, key: str,
            text: str) -> PostedTurn | None:
    """The stored answer to `key`; 422 when the key was used for a different message."""
    record = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user.id,
            IdempotencyRecord.conversation_id == conversation_id,
            IdempotencyRecord.key == key,
        )
    ).first()
    if record is None:
        return None
    if record.request_hash and not hmac.compare_digest(record.request_hash, request_hash(text)):
        raise validation_failed({"Idempotency-Key": [
            "This key was already used for a different message; use a new key."]})
    return PostedTurn(record.status_code, record.response, created=False)


def post_message(
    session: Session, user: User, conversation_id: int, text: str, idempotency_key: str | None,
    max_tokens: int,
) -> PostedTurn:
    """Store the user's message and a streaming assistant placeholder (202).

    With an `idempotency_key` already used by this user in this conversation for the same text,
    nothing is created and the first response is returned again (for another text: 422);
    concurrent retries are settled by a unique index.
    """
    conversation: Conversation = conversation_for(session, user, conversation_id)
    if idempotency_key:
        replay = _replay(session, user, conversation_id, idempotency_key, text)
        if replay is not None:
            return replay
    now = utcnow()
    assert user.id is not None
    user_message, placeholder = message_store.add_turn(
        session, conversation_id, user.id, text, now
    )
    body = {
        "user_message": message_json(user_message, user),
        "assistant_message": message_json(placeholder),
    }
    if idempotency_key:
        assert user.id is not None
        session.add(IdempotencyRecord(
            user_id=user.id, conversation_id=conversation_id, key=idempotency_key,
            request_hash=request_hash(text), status_code=202, response=body,
        ))
    conversation.updated_at = now
    session.add(conversation)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        assert idempotency_key is not None
        replay = _replay(session, user, conversation_id, idempotency_key, text)
        if replay is None:
            raise
        return replay
    request = prompt.reply_request(session, conversation, placeholder.id or 0, max_tokens)
    return PostedTurn(202, body, created=True, request=request)


def message_in(session: Session, user: User, conversation_id: int, message_id: int) -> Message:
    """Message `message_id` of a conversation the user takes part in (404/403 otherwise)."""
    conversation_for(session, user, conversation_id)
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise not_found("Message")
    return message
