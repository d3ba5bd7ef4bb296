"""The Starlette application: routes, error handlers, and the services it starts and stops."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from app.auth import PasswordHashing, TokenIssuer
from app.config import DEMO_MODEL_LABEL, Settings
from app.container import Limits, Services
from app.db import Database, create_db_engine, upgrade_schema
from app.errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    shared_state_error_handler,
    unexpected_error_handler,
)
from app.routes import auth, broadcasting, conversations, messages, meta, ui
from app.security import SecurityMiddleware
from app.services import accounts, message_store
from app.services.chat import ChatService
from app.services.llm import ClaudeModel, DemoModel, ReplyModel
from app.services.publisher import PusherPublisher
from app.shared_state import Limit, MemoryState, SharedState, SharedStateUnavailable

logger = logging.getLogger("app")
# Allocations between young collections (Python's default is 700).
GC_YOUNG_THRESHOLD = 5000
GIL_SWITCH_INTERVAL_SECONDS = 0.0005
# Nobody has signed in yet: registration and login bodies are a few hundred bytes.
ANONYMOUS_BODY_LIMIT = 64 * 1024


def _alive(settings: Settings, message_ids: list[int]) -> set[int]:
    """The replies other processes stream now (none without Redis, or when it cannot say)."""
    if settings.redis is None or not message_ids:
        return set()

    async def ask() -> set[int]:
        state = shared_state(settings)
        try:
            return await state.streaming_anywhere(message_ids)
        finally:
            await state.aclose()

    # In a thread of its own: this may be called with or without an event loop running.
    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(asyncio.run, ask()).result()
        except SharedStateUnavailable as exc:
            logger.warning("cannot tell which replies other processes stream: %s", exc)
            return set(message_ids)  # when in doubt, fail none: a cancel ends a leftover


def prepare_database(settings: Settings) -> Database:
    """Migrate the schema to head, fail the replies a previous run left streaming (not those
    another process streams now), seed the demo."""
    db = Database(create_db_engine(settings.database_url), settings.db_threads)
    upgrade_schema(db.engine)
    with db.session() as session:
        alive = _alive(settings, message_store.streaming_ids(session))
        interrupted = message_store.fail_interrupted(session, alive)
        if interrupted:
            logger.warning("marked %d interrupted replies as failed", interrupted)
        if settings.seed_demo and accounts.seed_demo(
            session, PasswordHashing(), settings.default_model
        ):
            logger.info("created the demo user %s", accounts.DEMO_EMAIL)
    return db


def _reply_model(settings: Settings) -> ReplyModel:
    if settings.anthropic_api_key is None:
        return DemoModel(DEMO_MODEL_LABEL, settings.demo_token_delay_ms / 1000)
    return ClaudeModel(
        settings.anthropic_api_key, settings.anthropic_base_url, settings.anthropic_max_retries
    )


def shared_state(settings: Settings) -> SharedState:
    """Redis when one is configured (several processes), else this process's memory."""
    if settings.redis is None:
        return MemoryState()
    from app.redis_state import RedisState

    return RedisState(settings.redis)


def build_services(settings: Settings, db: Database) -> Services:
    publisher = PusherPublisher(
        settings.broadcaster,
        timeout_seconds=settings.publish_timeout_seconds,
        attempts=settings.publish_attempts,
        parallel_requests=settings.publish_connections,
        tick_seconds=settings.publish_tick_ms / 1000,
    )
    state = shared_state(settings)
    return Services(
        settings=settings,
        db=db,
        passwords=PasswordHashing(settings.hashing_concurrency),
        tokens=TokenIssuer(settings.secret_key, settings.token_ttl_seconds),
        publisher=publisher,
        chat=ChatService(db, publisher, _reply_model(settings), settings, state),
        state=state,
        limits=Limits(
            typing=Limit("typing", settings.typing_limit_per_minute),
            login=Limit("login", settings.login_attempts_per_minute),
            login_address=Limit("login-address", settings.login_address_limit_per_minute),
            register=Limit("register", settings.register_limit_per_minute),
            message=Limit("message", settings.message_limit_per_minute),
        ),
    )


def freeze_startup_objects() -> None:
    """Keep the collector away from what start-up loaded (the SDK's types alone are ~200k
    objects): a full collection walking them stops the event loop for 100-250 ms here, a tail
    every streaming reply would feel; after `gc.freeze()` it walks only what came later.
    Young collections run a little less often too: replies allocate many short-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def favour_event_loop() -> None:
    """Let the event loop take the GIL back from database threads within half a millisecond.

    A thread asking for the GIL waits up to the switch interval (5 ms by default) for the one
    holding it; the event loop asks once per turn, so while a database thread runs ORM code
    every turn of the loop, and every streamed chunk with it, would wait that long.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)


def create_app(settings: Settings, db: Database | None = None) -> Starlette:
    """The app for `settings`; it migrates the database itself unless `db` is given ready."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = db or prepare_database(settings)
        services = build_services(settings, database)
        app.state.services = services
        if settings.gc_freeze:
            freeze_startup_objects()
        favour_event_loop()
        try:
            yield
        finally:
            await services.chat.shutdown()
            await services.publisher.aclose()
            await services.state.aclose()
            database.dispose()

    return Starlette(
        routes=[
            *meta.routes,
            *auth.routes,
            *conversations.routes,
            *messages.routes,
            *broadcasting.routes,
            *ui.routes,
        ],
        middleware=[Middleware(
            SecurityMiddleware, settings=settings,
            anonymous_limit=ANONYMOUS_BODY_LIMIT, signed_in_limit=settings.max_body_bytes,
        )],
        exception_handlers={
            ApiError: api_error_handler,
            SharedStateUnavailable: shared_state_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
