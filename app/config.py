"""One typed, validated configuration for the chat app, built from environment variables.

Every mistake raises `ConfigError` with a message naming the variable and the fix.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from broadcaster.scaling import ScalingConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")
DEMO_MODEL_LABEL = "Offline demo model (set ANTHROPIC_API_KEY to talk to Claude)"
_ENVIRONMENTS = ("development", "production", "testing")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which variable is wrong and why."""


@dataclass(frozen=True)
class BroadcasterSettings:
    """Where the Pusher-protocol broadcaster is and the app credentials it knows us by."""

    app_id: str
    key: str
    secret: str
    host: str
    port: int
    scheme: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, validated once at start."""

    environment: str
    database_url: str
    secret_key: str
    secret_key_generated: bool
    broadcaster: BroadcasterSettings
    broadcaster_secret_generated: bool
    anthropic_api_key: str | None
    anthropic_base_url: str | None
    anthropic_max_retries: int
    models: tuple[str, ...]
    default_model: str
    max_tokens: int
    token_ttl_seconds: int
    publish_interval_ms: int
    persist_interval_ms: int
    publish_timeout_seconds: float
    publish_attempts: int
    publish_connections: int
    publish_tick_ms: int
    max_running_replies: int
    broadcast_max_data_bytes: int
    typing_limit_per_minute: int
    login_attempts_per_minute: int
    login_address_limit_per_minute: int
    register_limit_per_minute: int
    message_limit_per_minute: int
    max_replies_per_user: int
    max_body_bytes: int
    hashing_concurrency: int
    demo_token_delay_ms: int
    seed_demo: bool
    ui_dist: Path
    # Set: the processes share limits, cancels and channel tokens through this Redis.
    redis: ScalingConfig | None = None
    shared_poll_ms: int = 50
    event_loop: str = "auto"
    # Threads running database work: one for SQLite (it writes one at a time, and every thread
    # more takes the GIL from the event loop in turn while replies stream), a few for a server.
    db_threads: int = 1
    gc_freeze: bool = True

    @property
    def demo_mode(self) -> bool:
        return self.anthropic_api_key is None

    @property
    def production(self) -> bool:
        return self.environment == "production"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (1/0), got {raw!r}")


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _secret(env: Mapping[str, str], name: str, production: bool) -> tuple[str, bool]:
    value = env.get(name, "").strip()
    if value:
        return value, False
    if production:
        raise ConfigError(f"{name} must be set when APP_ENV=production")
    return secrets.token_urlsafe(32), True


def _broadcaster(env: Mapping[str, str], production: bool) -> tuple[BroadcasterSettings, bool]:
    scheme = _text(env, "REVERB_SCHEME", "http").lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"REVERB_SCHEME must be http or https, got {scheme!r}")
    port = _int(env, "REVERB_PORT", 443 if scheme == "https" else 8080, minimum=1)
    if port > 65535:
        raise ConfigError(f"REVERB_PORT must be a TCP port (1-65535), got {port}")
    secret, generated = _secret(env, "REVERB_APP_SECRET", production)
    settings = BroadcasterSettings(
        app_id=_text(env, "REVERB_APP_ID", "local-app"),
        key=_text(env, "REVERB_APP_KEY", "local-key"),
        secret=secret,
        host=_text(env, "REVERB_HOST", "127.0.0.1"),
        port=port,
        scheme=scheme,
    )
    return settings, generated


def _models(env: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    raw = env.get("APP_MODELS", "").strip()
    models = tuple(m.strip() for m in raw.split(",") if m.strip()) if raw else DEFAULT_MODELS
    default = _text(env, "ANTHROPIC_MODEL", models[0])
    if default not in models:
        raise ConfigError(
            f"ANTHROPIC_MODEL {default!r} is not in the allowed models {', '.join(models)}"
            " (set APP_MODELS to a comma-separated list that includes it)"
        )
    return models, default


def _seed_demo(env: Mapping[str, str], production: bool) -> bool:
    """The demo account (public password) only on request, and never in production."""
    seed = _bool(env, "APP_SEED_DEMO", False)
    if seed and production:
        raise ConfigError("APP_SEED_DEMO must not be set when APP_ENV=production"
                          " (the demo account's password is public)")
    return seed


# Any of these names a Redis: the app then shares its state there (Reverb's variable names).
REDIS_VARIABLES = ("REDIS_URL", "REDIS_HOST", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES")


def _redis(env: Mapping[str, str]) -> ScalingConfig | None:
    """The Redis the processes share, when one is named; parsed as the broadcaster does."""
    if not any(env.get(name, "").strip() for name in REDIS_VARIABLES):
        return None
    from broadcaster.config import ConfigError as BroadcasterConfigError
    from broadcaster.scaling import load_scaling

    try:
        return load_scaling({**env, "REVERB_SCALING_ENABLED": "true"})
    except BroadcasterConfigError as exc:
        raise ConfigError(str(exc)) from None


def _event_loop(env: Mapping[str, str]) -> str:
    loop = _text(env, "APP_EVENT_LOOP", "auto").lower()
    if loop not in ("auto", "asyncio", "uvloop"):
        raise ConfigError(f"APP_EVENT_LOOP must be auto, asyncio or uvloop, got {loop!r}")
    return loop


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build and validate the settings from `env`; raise `ConfigError` on the first mistake."""
    environment = _text(env, "APP_ENV", "development").lower()
    if environment not in _ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(_ENVIRONMENTS)}, got {environment!r}")
    production = environment == "production"
    database_url = _text(env, "DATABASE_URL", "sqlite:///var/chat.sqlite3")
    if not database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            "DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL,"
            f" got {database_url.split(':', 1)[0]!r}"
        )
    secret_key, secret_generated = _secret(env, "APP_SECRET_KEY", production)
    if not secret_generated and len(secret_key) < 32:
        raise ConfigError(
            "APP_SECRET_KEY must be at least 32 characters long (it signs HS256 tokens);"
            " generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    broadcaster, broadcaster_generated = _broadcaster(env, production)
    models, default_model = _models(env)
    api_key = env.get("ANTHROPIC_API_KEY", "").strip() or None
    ui_dist = Path(_text(env, "APP_UI_DIST", str(REPO_ROOT / "echo_client_example" / "dist")))
    return Settings(
        environment=environment,
        database_url=database_url,
        secret_key=secret_key,
        secret_key_generated=secret_generated,
        broadcaster=broadcaster,
        broadcaster_secret_generated=broadcaster_generated,
        anthropic_api_key=api_key,
        anthropic_base_url=env.get("ANTHROPIC_BASE_URL", "").strip() or None,
        anthropic_max_retries=_int(env, "ANTHROPIC_MAX_RETRIES", 2),
        models=models,
        default_model=default_model,
        max_tokens=_int(env, "ANTHROPIC_MAX_TOKENS", 1024, minimum=1),
        token_ttl_seconds=_int(env, "APP_TOKEN_TTL_SECONDS", 7 * 24 * 3600, minimum=60),
        publish_interval_ms=_int(env, "APP_PUBLISH_INTERVAL_MS", 30),
        persist_interval_ms=_int(env, "APP_PERSIST_INTERVAL_MS", 1000, minimum=10),
        publish_timeout_seconds=_int(env, "APP_PUBLISH_TIMEOUT_MS", 2000, minimum=50) / 1000,
        publish_attempts=_int(env, "APP_PUBLISH_ATTEMPTS", 3, minimum=1),
        publish_connections=_int(env, "APP_PUBLISH_CONNECTIONS", 8, minimum=1),
        publish_tick_ms=_int(env, "APP_PUBLISH_TICK_MS", 5),
        max_running_replies=_int(env, "APP_MAX_RUNNING_REPLIES", 200, minimum=1),
        broadcast_max_data_bytes=_int(env, "APP_BROADCAST_MAX_DATA_BYTES", 10_240, minimum=1024),
        typing_limit_per_minute=_int(env, "APP_TYPING_LIMIT_PER_MINUTE", 10, minimum=1),
        login_attempts_per_minute=_int(env, "APP_LOGIN_ATTEMPTS_PER_MINUTE", 10, minimum=1),
        login_address_limit_per_minute=_int(env, "APP_LOGIN_ADDRESS_LIMIT_PER_MINUTE", 30,
                                            minimum=1),
        register_limit_per_minute=_int(env, "APP_REGISTER_LIMIT_PER_MINUTE", 10, minimum=1),
        message_limit_per_minute=_int(env, "APP_MESSAGE_LIMIT_PER_MINUTE", 30, minimum=1),
        max_replies_per_user=_int(env, "APP_MAX_REPLIES_PER_USER", 3, minimum=1),
        max_body_bytes=_int(env, "APP_MAX_BODY_BYTES", 1024 * 1024, minimum=64 * 1024),
        hashing_concurrency=_int(env, "APP_HASHING_CONCURRENCY", 2, minimum=1),
        demo_token_delay_ms=_int(env, "APP_DEMO_TOKEN_DELAY_MS", 40),
        seed_demo=_seed_demo(env, production),
        ui_dist=ui_dist,
        redis=_redis(env),
        shared_poll_ms=_int(env, "APP_SHARED_POLL_MS", 50, minimum=5),
        event_loop=_event_loop(env),
        db_threads=_int(env, "APP_DB_THREADS", 1 if database_url.startswith("sqlite") else 4,
                        minimum=1),
        gc_freeze=_bool(env, "APP_GC_FREEZE", True),
    )
