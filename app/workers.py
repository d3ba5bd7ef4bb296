"""The app of one of several worker processes (`chat-app serve --workers N`).

The parent (`app.cli`) has validated the settings, migrated the schema and failed the replies a
previous run left streaming; a worker must do none of that again (failing "interrupted" replies
would end the ones its siblings are streaming).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from app.cli import configure_logging
from app.config import load_settings
from app.db import Database, create_db_engine
from app.web import create_app


def worker_app() -> Starlette:
    """The app on the prepared database, configured from the environment the parent set."""
    configure_logging()
    settings = load_settings(os.environ)
    return create_app(settings, Database(create_db_engine(settings.database_url),
                                         settings.db_threads))
