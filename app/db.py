"""The database engine, sessions, and schema migrations (Alembic, upgraded to head at start)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while the streaming task writes; foreign keys make cascades work.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_db_engine(database_url: str) -> Engine:
    """An engine for `database_url`; for SQLite, the file's directory is created if missing."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 10}
        )
        event.listen(engine, "connect", _enable_sqlite_pragmas)
        return engine
    return create_engine(database_url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def upgrade_schema(engine: Engine) -> None:
    """Apply every pending Alembic migration (upgrade to head) on `engine`'s database."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # Rebuilding a table drops it; with foreign keys on, SQLite would cascade that drop
            # into the rows that reference it. The pragma only takes effect outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


class Database:
    """Opens sessions on one engine and runs blocking database work off the event loop."""

    def __init__(self, engine: Engine, threads: int = 8) -> None:
        self.engine = engine
        # A few threads are enough (SQLite writes one at a time, and every query is short);
        # dozens would only take the GIL from the event loop in turn while replies stream.
        self._threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits nothing by itself; callers commit what they change."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in a worker thread so queries never block the event loop."""

        def call() -> T:
            with self.session() as session:
                return work(session)

        if self._limiter is None:  # made in the event loop that uses it
            self._limiter = anyio.CapacityLimiter(self._threads)
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    def dispose(self) -> None:
        self.engine.dispose()
