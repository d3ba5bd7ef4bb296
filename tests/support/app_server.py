"""Start the chat app as a real subprocess (`python -m app serve`) for tests and benchmarks.

Usage::

    with running_app(tmp_path, broadcaster=server, claude_url=fake.base_url) as app:
        httpx.get(f"{app.base_url}/api/config")

`app_env()` builds the environment (broadcaster credentials, database, secrets, the Claude URL);
`AppServer` starts the process and waits until `GET /up` answers, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import Broadcaster, ManagedProcess, ServerProcess, free_port

TEST_SECRET_KEY = "test-secret-key-for-the-chat-app-0123456789"


def app_env(
    *,
    database_url: str,
    broadcaster: Broadcaster | None = None,
    broadcaster_port: int | None = None,
    claude_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for the app: `claude_url` None means the offline demo model.

    Without a broadcaster, `broadcaster_port` points the app at a port (e.g. one nothing listens
    on). Publishing and coalescing settings are the production defaults unless `extra` says else.
    """
    env = {
        "APP_ENV": "testing",
        "APP_SECRET_KEY": TEST_SECRET_KEY,
        "APP_SEED_DEMO": "0",
        "APP_LOG_LEVEL": "INFO",
        "DATABASE_URL": database_url,
        "ANTHROPIC_API_KEY": "test-api-key" if claude_url else "",
        "ANTHROPIC_BASE_URL": claude_url or "",
        "ANTHROPIC_MAX_RETRIES": "0",
        "REVERB_HOST": "127.0.0.1",
        "REVERB_SCHEME": "http",
        # Tests register and post far faster than people do; the limits have their own tests.
        "APP_REGISTER_LIMIT_PER_MINUTE": "100000",
        "APP_LOGIN_ADDRESS_LIMIT_PER_MINUTE": "100000",
        "APP_MESSAGE_LIMIT_PER_MINUTE": "100000",
        "APP_MAX_REPLIES_PER_USER": "1000",
    }
    if broadcaster is not None:
        env.update(
            REVERB_APP_ID=broadcaster.app_id,
            REVERB_APP_KEY=broadcaster.key,
            REVERB_APP_SECRET=broadcaster.secret,
            REVERB_PORT=str(broadcaster.port),
        )
    else:
        env.update(
            REVERB_APP_ID="100001",
            REVERB_APP_KEY="app-key",
            REVERB_APP_SECRET="app-secret",
            REVERB_PORT=str(broadcaster_port or free_port()),
        )
    env.update(extra or {})
    return env


@dataclass
class AppServer(ServerProcess):
    """A running `python -m app serve [--workers N]` on a free loopback port."""

    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AppServer:
        argv = [sys.executable, "-m", "app", "serve", "--host", self.host,
                "--port", str(self.port)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self._launch(argv, self.env, self.base_url)
        return self


@contextlib.contextmanager
def running_app(
    tmp_dir: Path,
    *,
    database_url: str | None = None,
    broadcaster: Broadcaster | None = None,
    claude_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[AppServer]:
    """Run the app for a `with` block; SQLite in `tmp_dir` unless `database_url` is given.
    With `workers` above 1, `extra_env` must name a Redis (`REDIS_URL`)."""
    url = database_url or f"sqlite:///{tmp_dir / 'chat.sqlite3'}"
    env = app_env(database_url=url, broadcaster=broadcaster, claude_url=claude_url,
                  extra=extra_env)
    server = AppServer(env=env, workers=workers, log_path=tmp_dir / "app.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
