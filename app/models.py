"""Database tables: users, conversations, their members, messages and idempotency records."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

MESSAGE_ROLES = ("user", "assistant", "system")


class MessageStatus(StrEnum):
    """The one lifecycle of a message: a reply is `streaming` until it ends in one of the others.

    "Is it streaming?" is always `status is MessageStatus.STREAMING`; nothing else records it.
    """

    STREAMING = "streaming"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


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


# SQLite reuses the rowid of the newest deleted row unless the table says AUTOINCREMENT; a
# reused conversation id would hand the next owner's events to an old subscriber.
_NO_ID_REUSE = {"sqlite_autoincrement": True}


def new_channel_token() -> str:
    """A fresh unguessable channel token (128 bits, hex: valid in a Pusher channel name)."""
    return secrets.token_hex(16)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (_NO_ID_REUSE,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    email: str = Field(max_length=255, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    # Every token and cookie carries the version it was issued under; logout bumps it.
    token_version: int = Field(default=1)
    created_at: datetime = _timestamp()


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (_NO_ID_REUSE,)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = _owner_fk("users")
    title: str = Field(max_length=255)
    model: str = Field(max_length=100)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    # Part of the channel names; replaced when a member leaves so old subscriptions go dead.
    channel_token: str = Field(
        default_factory=new_channel_token, sa_column=Column(String(64), nullable=False)
    )
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class ConversationMember(SQLModel, table=True):
    __tablename__ = "conversation_members"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id"), _NO_ID_REUSE)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _owner_fk("conversations")
    user_id: int = _owner_fk("users")
    created_at: datetime = _timestamp()


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        _NO_ID_REUSE,
    )

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
    status: MessageStatus = Field(
        default=MessageStatus.COMPLETE,
        sa_column=Column(
            SAEnum(MessageStatus, native_enum=False, length=20,
                   values_callable=lambda statuses: [s.value for s in statuses]),
            nullable=False,
        ),
    )
    seq: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed_at: datetime | None = _timestamp(nullable=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a request sent with an `Idempotency-Key`, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "conversation_id", "key"), _NO_ID_REUSE)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = _owner_fk("users")
    conversation_id: int = _owner_fk("conversations")
    key: str = Field(max_length=255)
    # SHA-256 of the request it answered: the same key with another body is refused.
    request_hash: str = Field(default="", max_length=64)
    status_code: int
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _timestamp()
