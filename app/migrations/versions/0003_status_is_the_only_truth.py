"""`messages.is_streaming` goes: `status = 'streaming'` is the one record of a running reply.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A reply both flagged streaming and given a final status never existed; if one did, the
    # flag wins, so that start-up marks it failed as interrupted rather than leaving it hanging.
    op.execute("UPDATE messages SET status = 'streaming' WHERE is_streaming")
    op.execute("UPDATE messages SET status = 'failed' WHERE status = 'streaming' "
               "AND NOT is_streaming")
    with op.batch_alter_table(
        "messages", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_column("is_streaming")


def downgrade() -> None:
    with op.batch_alter_table(
        "messages", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.add_column(sa.Column("is_streaming", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.execute("UPDATE messages SET is_streaming = (status = 'streaming')")
