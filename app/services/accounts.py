"""Registering users, checking their passwords, and seeding the demo account."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app.auth import PasswordHashing
from app.models import Conversation, User
from app.services import message_store

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"


class EmailTaken(Exception):
    """Another account already uses this email address."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def register(session: Session, name: str, email: str, password_hash: str) -> User:
    """Create a user with an argon2 `password_hash`; `EmailTaken` if the email is in use."""
    email = normalize_email(email)
    if find_by_email(session, email) is not None:
        raise EmailTaken(email)
    user = User(name=name, email=email, password_hash=password_hash)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise EmailTaken(email) from None
    session.refresh(user)
    return user


def find_by_email(session: Session, email: str) -> User | None:
    return session.exec(
        select(User).where(func.lower(User.email) == normalize_email(email))
    ).first()


def email_taken(session: Session, email: str) -> bool:
    return find_by_email(session, email) is not None


def revoke_tokens(session: Session, user_id: int) -> None:
    """Invalidate every token and cookie issued to the user so far (logout)."""
    session.execute(
        update(User).where(col(User.id) == user_id)
        .values(token_version=col(User.token_version) + 1)
    )
    session.commit()


def seed_demo(session: Session, hashing: PasswordHashing, model: str) -> bool:
    """Create the demo user and its "Welcome" conversation unless they exist; True if created."""
    if find_by_email(session, DEMO_EMAIL) is not None:
        return False
    user = register(session, "Demo User", DEMO_EMAIL, hashing.hash(DEMO_PASSWORD))
    assert user.id is not None
    conversation = Conversation(
        owner_id=user.id,
        title="Welcome",
        model=model,
        system_prompt="You are a helpful, concise assistant.",
    )
    session.add(conversation)
    session.flush()
    assert conversation.id is not None
    message_store.add_complete(
        session, conversation.id, "assistant",
        "Welcome! Ask me anything: my reply streams in as it is written.",
    )
    session.commit()
    return True
