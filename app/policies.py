"""Who may do what with a conversation: its owner and the members the owner invited."""

from __future__ import annotations

from sqlmodel import Session, select

from app.errors import forbidden, not_found
from app.models import Conversation, ConversationMember, User


def is_participant(session: Session, user: User, conversation: Conversation) -> bool:
    """True for the owner and for invited members; they may view, post, type and subscribe."""
    if conversation.owner_id == user.id:
        return True
    membership = session.exec(
        select(ConversationMember.id).where(
            ConversationMember.conversation_id == conversation.id,
            ConversationMember.user_id == user.id,
        )
    ).first()
    return membership is not None


def conversation_for(session: Session, user: User, conversation_id: int) -> Conversation:
    """The conversation if `user` takes part in it; 404 if it does not exist, 403 otherwise."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise not_found("Conversation")
    if not is_participant(session, user, conversation):
        raise forbidden()
    return conversation


def owned_conversation(session: Session, user: User, conversation_id: int) -> Conversation:
    """The conversation if `user` owns it (to delete it or invite others); 404/403 otherwise."""
    conversation = conversation_for(session, user, conversation_id)
    if conversation.owner_id != user.id:
        raise forbidden()
    return conversation
