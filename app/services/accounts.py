"""Registering users, checking their passwords, and seeding the demo account."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from app.auth import PasswordHashing
from app.models import Conversation, Message, User

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"


class EmailTaken(Exception):
    """Another account already uses this email address."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def register(session: Session, hashing: PasswordHashing, name: str, email: str,
             password: str) -> User:
    """Create a user; raise `EmailTaken` if the (case-insensitive) email is in use."""
    email = normalize_email(email)
    if find_by_email(session, email) is not None:
        raise EmailTaken(email)
    user = User(name=name, email=email, password_hash=hashing.hash(password))
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


def authenticate(session: Session, hashing: PasswordHashing, email: str,
                 password: str) -> User | None:
    """The user whose email and password match, else None."""
    user = find_by_email(session, email)
    if user is None:
        # Hash anyway so a wrong email takes as long as a wrong password.
        hashing.hash(password)
        return None
    return user if hashing.verify(user.password_hash, password) else None


def seed_demo(session: Session, hashing: PasswordHashing, model: str) -> bool:
    """Create the demo user and its "Welcome" conversation unless they exist; True if created."""
    if find_by_email(session, DEMO_EMAIL) is not None:
        return False
    user = register(session, hashing, "Demo User", DEMO_EMAIL, DEMO_PASSWORD)
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
    session.add(
        Message(
            conversation_id=conversation.id,
            role="assistant",
            content="Welcome! Ask me anything: my reply streams in as it is written.",
            status="complete",
        )
    )
    session.commit()
    return True
