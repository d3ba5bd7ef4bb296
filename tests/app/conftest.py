"""Fixtures for the chat app's tests: databases, the scripted Claude, a running app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.app_server import AppServer, running_app
from tests.support.fake_claude import FakeClaude
from tests.support.processes import Broadcaster

TEST_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _admin_dsn() -> str:
    url = make_url(TEST_POSTGRES_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    name = f"chat_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Each test module using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'chat.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
def fake_claude() -> Iterator[FakeClaude]:
    with FakeClaude() as claude:
        yield claude


@pytest.fixture(scope="module")
def chat_app(
    tmp_path_factory: pytest.TempPathFactory,
    shared_broadcaster: Broadcaster,
    fake_claude: FakeClaude,
    database_url: str,
) -> Iterator[AppServer]:
    """The app on a real broadcaster and the scripted Claude, on SQLite then PostgreSQL."""
    tmp: Path = tmp_path_factory.mktemp("app")
    with running_app(
        tmp, database_url=database_url, broadcaster=shared_broadcaster,
        claude_url=fake_claude.base_url,
    ) as server:
        yield server


@pytest.fixture
async def http(chat_app: AppServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's app."""
    async with httpx.AsyncClient(base_url=chat_app.base_url, timeout=10) as client:
        yield client
