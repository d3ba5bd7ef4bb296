"""The schema migrations keep every row, and SQLite stops reusing ids after them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from app.db import MIGRATIONS_DIR, create_db_engine, upgrade_schema


def test_upgrading_an_existing_sqlite_database_keeps_rows_and_ends_id_reuse(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text(
            "INSERT INTO users (id, name, email, password_hash, created_at)"
            " VALUES (1, 'A', 'a@example.com', 'x', CURRENT_TIMESTAMP)"))
        for conversation_id in (1, 2):
            connection.execute(text(
                "INSERT INTO conversations (id, owner_id, title, model, metadata, created_at,"
                f" updated_at) VALUES ({conversation_id}, 1, 't', 'm', '{{}}', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO messages (conversation_id, role, content, metadata, is_streaming,"
                f" status, seq, created_at, updated_at) VALUES ({conversation_id}, 'user', 'hi',"
                " '{}', 0, 'complete', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    upgrade_schema(engine)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 2
        tokens = connection.execute(text("SELECT channel_token FROM conversations")).scalars()
        assert len({token for token in tokens if token and len(token) == 32}) == 2
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        for table in ("users", "conversations", "conversation_members", "messages",
                      "idempotency_records"):
            schema = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}).scalar()
            assert "AUTOINCREMENT" in str(schema), table
        assert connection.execute(text("SELECT status FROM messages")).scalars().all() == [
            "complete", "complete"]
        connection.execute(text("DELETE FROM messages WHERE conversation_id = 2"))
        connection.execute(text("DELETE FROM conversations WHERE id = 2"))
        connection.execute(text(
            "INSERT INTO conversations (owner_id, title, model, metadata, channel_token,"
            " created_at, updated_at) VALUES (1, 't', 'm', '{}', 'x', CURRENT_TIMESTAMP,"
            " CURRENT_TIMESTAMP)"))
        newest = connection.execute(text("SELECT max(id) FROM conversations")).scalar()
    assert newest == 3
    engine.dispose()
