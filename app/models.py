"""Database tables: users, conversations, their members, messages and idempotency records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

MESSAGE_ROLES = ("user", "assistant", "system")
MESSAGE_STATUSES = ("streaming", "complete", "failed", "cancelled")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _timestamp(nullable: bool = False) -> Any:
    column = Column(DateTime(timezone=True), nullable=nullable)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


def _owner_fk(table: str, nullable: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey(f"{table}.id", ondelete="CASCADE" if not nullable else "SET NULL"),
            nullable=nullable,
            index=True,
        ),
    )


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    email: str = Field(max_length=255, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    created_at: datetime = _timestamp()


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk("users")
    title: str = Field(max_length=255)
    model: str = Field(max_length=100)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class ConversationMember(SQLModel, table=True):
    __tablename__ = "conversation_members"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _owner_fk("conversations")
    user_id: int = _owner_fk("users")
    created_at: datetime = _timestamp()


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        )
    )
    user_id: int | None = _owner_fk("users", nullable=True)
    role: str = Field(max_length=20)
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    is_streaming: bool = False
    status: str = Field(default="complete", max_length=20)
    seq: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed_at: datetime | None = _timestamp(nullable=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a request sent with an `Idempotency-Key`, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "conversation_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = _owner_fk("users")
    conversation_id: int = _owner_fk("conversations")
    key: str = Field(max_length=255)
    status_code: int
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _timestamp()
