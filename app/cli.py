"""`python -m app serve [--host H] [--port P] [--workers N]`: migrate, seed, serve with uvicorn.

With `--workers N` above 1, uvicorn runs N processes on one port (`app.workers:worker_app`);
this process migrates and seeds once before they start, and hands them its generated secrets
so that a token signed by one is accepted by all. They must share a Redis (see `Settings.redis`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from app.config import ConfigError, Settings, load_settings
from broadcaster.logs import KeyValueFormatter

logger = logging.getLogger("app")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat-app", description="The chat app's HTTP server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="processes serving the port (default 1; more need REDIS_URL)")
    return parser


def configure_logging() -> None:
    """One structured format for both services: the broadcaster's `key=value` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("APP_LOG_LEVEL", "INFO").upper())
    # One line per publish or per migration step would drown the log.
    for chatty in ("httpx", "httpcore", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _warn_about_generated_secrets(settings: Settings) -> None:
    if settings.secret_key_generated:
        logger.warning("APP_SECRET_KEY is not set: using a random key, so sign-ins end at restart")
    if settings.broadcaster_secret_generated:
        logger.warning("REVERB_APP_SECRET is not set: using a random secret the broadcaster "
                       "will not know, so nothing will be published; set it to the broadcaster's")
    if settings.demo_mode:
        logger.warning("ANTHROPIC_API_KEY is not set: replies come from the offline demo model")


def _safe_url(database_url: str) -> str:
    """The URL with its password masked, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:
        return database_url.split(":", 1)[0] + ":…"


def _scrub(text: str, database_url: str) -> str:
    """`text` with the URL's password (if any) masked, whatever the driver put in its message."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(database_url).password
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 for configuration errors)."""
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"chat-app: configuration error: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"chat-app: configuration error: --port must be 1-65535, got {args.port}",
              file=sys.stderr)
        return 2
    if not 1 <= args.workers <= 64:
        print(f"chat-app: configuration error: --workers must be 1-64, got {args.workers}",
              file=sys.stderr)
        return 2
    if args.workers > 1 and settings.redis is None:
        print("chat-app: configuration error: --workers above 1 needs a Redis the processes "
              "share (set REDIS_URL, or REDIS_HOST/REDIS_PORT): without it each process would "
              "keep its own limits and could not cancel another's replies", file=sys.stderr)
        return 2
    _warn_about_generated_secrets(settings)
    # Imported only now: the web stack takes seconds to load, configuration errors should not.
    import uvicorn

    from app.web import create_app, prepare_database

    try:
        db = prepare_database(settings)
    except Exception as exc:
        print(f"chat-app: cannot prepare the database at {_safe_url(settings.database_url)}:"
              f" {_scrub(str(exc), settings.database_url)}", file=sys.stderr)
        return 1
    server: dict[str, Any] = {
        "host": args.host, "port": args.port, "loop": settings.event_loop,
        "log_level": "warning", "lifespan": "on", "timeout_graceful_shutdown": 10,
    }
    if args.workers > 1:
        db.dispose()
        # The workers read the environment again: generated secrets must be the same in all.
        os.environ["APP_SECRET_KEY"] = settings.secret_key
        os.environ["REVERB_APP_SECRET"] = settings.broadcaster.secret
        uvicorn.run("app.workers:worker_app", factory=True, workers=args.workers, **server)
        return 0
    uvicorn.run(create_app(settings, db), **server)
    return 0
