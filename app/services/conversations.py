"""Conversations: listing, creating, reading with messages, deleting, inviting members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import Session, col, func, select

from app.errors import ApiError, forbidden, not_found
from app.models import (
    Conversation,
    ConversationMember,
    IdempotencyRecord,
    Message,
    MessageStatus,
    User,
    new_channel_token,
    utcnow,
)
from app.policies import conversation_for, owned_conversation
from app.serializers import conversation_json
from app.services import message_store
from app.services.accounts import find_by_email

PAGE_SIZE = 20


def _visible_to(user: User) -> Any:
    member_of = select(ConversationMember.conversation_id).where(
        ConversationMember.user_id == user.id
    )
    return or_(col(Conversation.owner_id) == user.id, col(Conversation.id).in_(member_of))


def members_of(session: Session, conversation: Conversation) -> list[User]:
    """The owner first, then invited members in the order they joined."""
    owner = session.get(User, conversation.owner_id)
    invited = session.exec(
        select(User)
        .join(ConversationMember, col(ConversationMember.user_id) == col(User.id))
        .where(ConversationMember.conversation_id == conversation.id)
        .order_by(col(ConversationMember.id))
    ).all()
    return ([owner] if owner else []) + list(invited)


def detail_json(session: Session, conversation: Conversation) -> dict[str, Any]:
    assert conversation.id is not None
    return conversation_json(
        conversation,
        messages_count=message_store.count_messages(session, conversation.id),
        members=members_of(session, conversation),
    )


def list_page(session: Session, user: User, page: int) -> dict[str, Any]:
    """One page of the user's conversations, most recently active first, with message counts."""
    total = int(
        session.exec(select(func.count()).select_from(Conversation).where(_visible_to(user))).one()
    )
    counts = (
        select(Message.conversation_id, func.count().label("n"))
        .group_by(col(Message.conversation_id))
        .subquery()
    )
    rows = session.exec(
        select(Conversation, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.conversation_id == Conversation.id)
        .where(_visible_to(user))
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    last_page = max(1, -(-total // PAGE_SIZE))
    return {
        "data": [conversation_json(c, messages_count=int(n)) for c, n in rows],
        "meta": {"current_page": page, "per_page": PAGE_SIZE, "total": total,
                 "last_page": last_page},
    }


def create(session: Session, user: User, title: str, model: str,
           system_prompt: str | None) -> dict[str, Any]:
    assert user.id is not None
    conversation = Conversation(
        owner_id=user.id, title=title, model=model, system_prompt=system_prompt
    )
    session.add(conversation)
    session.commit()
    session.refresh(conversation)
    return detail_json(session, conversation)


def show(session: Session, user: User, conversation_id: int, *, limit: int,
         before: int | None, since: int | None) -> dict[str, Any]:
    """The conversation and a window of at most `limit` messages (see the REST API docs)."""
    conversation = conversation_for(session, user, conversation_id)
    body: dict[str, Any] = {"conversation": detail_json(session, conversation)}
    if since is not None:
        # One more than asked for tells whether the client should ask again.
        messages = message_store.messages_since(session, conversation_id, since, limit + 1)
        body["has_more"] = len(messages) > limit
        messages = messages[:limit]
    else:
        messages = message_store.latest_messages(session, conversation_id, limit, before)
    body["messages"] = message_store.messages_json(session, messages)
    return body


@dataclass(frozen=True)
class Deleted:
    """What a deleted conversation leaves behind: replies to stop, the channel token it had."""

    streaming: list[int]
    channel_token: str


def delete_owned(session: Session, user: User, conversation_id: int) -> Deleted:
    """Delete the conversation with its messages; returns the replies still streaming.

    Its id is never handed out again (AUTOINCREMENT on SQLite, sequences on PostgreSQL), so old
    subscriptions cannot reach a future conversation.
    """
    conversation = owned_conversation(session, user, conversation_id)
    token = conversation.channel_token
    streaming = list(session.exec(
        select(Message.id).where(
            Message.conversation_id == conversation_id,
            col(Message.status) == MessageStatus.STREAMING,
        )
    ).all())
    # Explicit deletes, so no database relies on ON DELETE CASCADE being enforced.
    message_store.delete_all(session, conversation_id)
    for table in (ConversationMember, IdempotencyRecord):
        session.execute(delete(table).where(col(table.conversation_id) == conversation_id))
    session.delete(conversation)
    session.commit()
    return Deleted([i for i in streaming if i is not None], token)


class InviteError(Exception):
    """The invitation cannot be made; `field_message` says why (422 on the email field)."""

    def __init__(self, field_message: str) -> None:
        super().__init__(field_message)
        self.field_message = field_message


def invite(session: Session, user: User, conversation_id: int, email: str) -> dict[str, Any]:
    """Add the user with `email` to the owner's conversation; idempotent for existing members."""
    conversation = owned_conversation(session, user, conversation_id)
    invitee = find_by_email(session, email)
    if invitee is None:
        raise InviteError("No user has this email address.")
    if invitee.id == conversation.owner_id:
        raise InviteError("The owner is already in the conversation.")
    exists = session.exec(
        select(ConversationMember.id).where(
            ConversationMember.conversation_id == conversation_id,
            ConversationMember.user_id == invitee.id,
        )
    ).first()
    if exists is None:
        assert invitee.id is not None
        session.add(ConversationMember(conversation_id=conversation_id, user_id=invitee.id))
        conversation.updated_at = utcnow()
        session.add(conversation)
        session.commit()
    return detail_json(session, conversation)


@dataclass(frozen=True)
class Removed:
    """A member left or was removed: the channel token before and after, and the new detail."""

    old_token: str
    new_token: str
    conversation: dict[str, Any]


def remove_member(session: Session, user: User, conversation_id: int, member_id: int) -> Removed:
    """The owner removes a member, or a member leaves (`member_id` is their own id).

    The channel token is replaced in the same transaction, so the removed user's subscriptions
    (and any signature they obtained) name a channel nothing is published to any more.
    404 for someone who is not a member; 403 for anyone else's removal by a non-owner, and for
    the owner (who deletes the conversation instead).
    """
    conversation = conversation_for(session, user, conversation_id)
    if user.id not in (member_id, conversation.owner_id):
        raise forbidden()
    if member_id == conversation.owner_id:
        raise ApiError(422, "The owner cannot leave; delete the conversation instead.")
    membership = session.exec(
        select(ConversationMember).where(
            ConversationMember.conversation_id == conversation_id,
            ConversationMember.user_id == member_id,
        )
    ).first()
    if membership is None:
        raise not_found("Member")
    old_token = conversation.channel_token
    session.delete(membership)
    conversation.channel_token = new_channel_token()
    conversation.updated_at = utcnow()
    session.add(conversation)
    session.commit()
    return Removed(old_token, conversation.channel_token, detail_json(session, conversation))
