"""Ids are never reused, channel tokens, token versions, idempotency request hashes.

On SQLite every table is rebuilt with AUTOINCREMENT, so the id of a deleted row is never handed
out again (PostgreSQL sequences never reuse ids). Conversations get a random `channel_token`
(part of their channel names), users a `token_version` (bumped at logout), idempotency records
the hash of the request they answered.

The SQLite rebuild drops and recreates tables; `app.db.upgrade_schema` turns foreign keys off
for the duration, or dropping `conversations` would cascade into the messages.

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-01
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("users", "conversations", "conversation_members", "messages", "idempotency_records")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("channel_token", sa.String(64), nullable=True))
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(
            sa.Column("request_hash", sa.String(64), nullable=False, server_default="")
        )
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM conversations")).scalars().all()
    for conversation_id in ids:
        bind.execute(
            sa.text("UPDATE conversations SET channel_token = :token WHERE id = :id"),
            {"token": secrets.token_hex(16), "id": conversation_id},
        )
    with op.batch_alter_table("conversations") as batch:
        batch.alter_column("channel_token", existing_type=sa.String(64), nullable=False)
    if sqlite:
        for table in TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("request_hash")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("channel_token")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
