"""One typed, validated configuration built from REVERB_* environment variables and/or a TOML file.

Every mistake is reported as a `ConfigError` whose message says what to fix.
"""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from broadcaster.protocol.apps import App
from broadcaster.protocol.paths import normalize_prefix
from broadcaster.protocol.webhook_config import Webhook, parse_webhooks
from broadcaster.scaling import ScalingConfig, load_scaling
from broadcaster.server.state import ServerLimits


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the setting and the fix."""


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    apps: tuple[App, ...]
    limits: ServerLimits
    debug: bool = False
    development_app: bool = False
    # Operations: see docs/operations.md.
    path: str = ""
    tls_cert: str | None = None
    tls_key: str | None = None
    metrics: bool = True
    metrics_host: str = ""
    metrics_port: int = 9601
    shutdown_grace: float = 5.0
    # Scaling out over Redis (docs/scaling.md); None: this node is on its own.
    scaling: ScalingConfig | None = None


def _int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def _optional_int(name: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    return _int(name, value, minimum=1)


def _float(name: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not number >= minimum or number == float("inf"):
        raise ConfigError(f"{name} must be a finite number of at least {minimum}, got {value!r}")
    return number


def _optional_float(name: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    number = _float(name, value)
    if number <= 0:
        raise ConfigError(f"{name} must be above 0 (leave it unset to turn the limit off)")
    return number


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _origins(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ConfigError(f"{name} must be a list of host patterns, got {value!r}")
    items = [item for item in items if item]
    if not items:
        raise ConfigError(f"{name} must name at least one origin (use '*' for any)")
    return tuple(items)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        raise ConfigError(f"{name} must be a non-empty string")
    return str(value).strip()


def _webhooks(name: str, value: Any) -> tuple[Webhook, ...]:
    """A TOML array of `[[apps.webhooks]]` tables, or a JSON list in the environment."""
    try:
        return parse_webhooks(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


_APP_OPTIONS: dict[str, Callable[[str, Any], Any]] = {
    "id": _text,
    "key": _text,
    "secret": _text,
    "enabled": _bool,
    "activity_timeout": lambda n, v: _int(n, v, 1),
    "ping_interval": lambda n, v: _int(n, v, 1),
    "pong_timeout": lambda n, v: _int(n, v, 1),
    "max_message_size": lambda n, v: _int(n, v, 100),
    "max_event_data_size": lambda n, v: _int(n, v, 100),
    "max_connections": _optional_int,
    "allowed_origins": _origins,
    "client_events": _bool,
    "max_client_events_per_second": lambda n, v: _int(n, v, -1),
    "max_presence_members": lambda n, v: _int(n, v, 1),
    "max_presence_user_info_size": lambda n, v: _int(n, v, 1),
    "cache_ttl": lambda n, v: _int(n, v, 1),
    "subscription_count": _bool,
    "user_authentication_timeout": _optional_int,
    "webhooks": _webhooks,
    "api_rate_limit": _optional_float,
    "rate_limiting_enabled": _bool,
    "rate_limit_max_attempts": lambda n, v: _int(n, v, 1),
    "rate_limit_decay_seconds": lambda n, v: _int(n, v, 1),
    "rate_limit_terminate": _bool,
}
assert set(_APP_OPTIONS) == {f.name for f in fields(App)}

_CLIENT_EVENTS_FROM = {"members": True, "all": True, "none": False}


def _app_from(options: Mapping[str, Any], where: str, naming: Callable[[str], str]) -> App:
    unknown = sorted(set(options) - set(_APP_OPTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(_APP_OPTIONS)}")
    for required in ("id", "key", "secret"):
        if required not in options:
            raise ConfigError(f"{where}: {naming(required)} is required")
    values = {name: _APP_OPTIONS[name](naming(name), value) for name, value in options.items()}
    return App(**values)


def _app_from_env(env: Mapping[str, str]) -> App | None:
    options: dict[str, Any] = {}
    for name in _APP_OPTIONS:
        value = env.get(f"REVERB_APP_{name.upper()}")
        if value is not None and value != "":
            options[name] = value
    from_reverb = env.get("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM")
    if from_reverb and "client_events" not in options:
        if from_reverb not in _CLIENT_EVENTS_FROM:
            raise ConfigError("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM must be members, all or none")
        options["client_events"] = _CLIENT_EVENTS_FROM[from_reverb]
    if not options:
        return None
    return _app_from(options, "environment", lambda n: f"REVERB_APP_{n.upper()}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


DEVELOPMENT_APP_ID = "local-app"
DEVELOPMENT_APP_KEY = "local-key"


def development_app() -> App:
    """A throw-away app for local use when nothing is configured.

    Its id and key are the chat app's defaults (`REVERB_APP_ID`/`REVERB_APP_KEY`), so the two
    services agree out of the box; the secret is fresh every start, because anyone who knows it
    can publish: share one `REVERB_APP_SECRET` between them (as `make run` does).
    """
    return App(id=DEVELOPMENT_APP_ID, key=DEVELOPMENT_APP_KEY,
               secret="dev-secret-" + secrets.token_hex(12))


def load_config(env: Mapping[str, str], config_file: str | None = None, *,
                host: str | None = None, port: int | None = None,
                debug: bool = False, options: Mapping[str, Any] | None = None) -> Config:
    """Build the configuration. Precedence: command line, then environment, then the TOML file.

    `options` holds server options given on the command line, named as in `[server]`.
    """
    document = _read_toml(Path(config_file)) if config_file else {}
    server = document.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError("[server] in the config file must be a table")
    apps_doc = document.get("apps", [])
    if not isinstance(apps_doc, list) or not all(isinstance(a, dict) for a in apps_doc):
        raise ConfigError("[[apps]] in the config file must be an array of tables")
    scaling_doc = document.get("scaling", {})
    if not isinstance(scaling_doc, dict):
        raise ConfigError("[scaling] in the config file must be a table")
    unknown = sorted(set(document) - {"server", "apps", "scaling"})
    if unknown:
        raise ConfigError(f"config file: unknown section(s) {', '.join(unknown)}")

    apps = [_app_from(doc, f"[[apps]] #{i + 1}", lambda n: n) for i, doc in enumerate(apps_doc)]
    env_app = _app_from_env(env)
    if env_app is not None:
        apps.append(env_app)
    for attribute in ("id", "key"):
        seen = [getattr(app, attribute) for app in apps]
        duplicates = sorted({value for value in seen if seen.count(value) > 1})
        if duplicates:
            raise ConfigError(f"two apps share the {attribute} {duplicates[0]!r}")
    dev = not apps
    if dev:
        apps = [development_app()]

    chosen_host = host or env.get("REVERB_SERVER_HOST") or server.get("host") or "0.0.0.0"
    chosen_port = _int("port", port if port is not None
                       else env.get("REVERB_SERVER_PORT") or server.get("port", 8080))
    if not 0 <= chosen_port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {chosen_port}")

    def limit(name: str, default: int) -> int:
        value = env.get(f"REVERB_{name.upper()}") or server.get(name, default)
        return _int(name, value, 1)

    limits = ServerLimits(
        max_request_size=limit("max_request_size", ServerLimits().max_request_size),
        max_write_buffer=limit("max_write_buffer", ServerLimits().max_write_buffer),
    )
    return Config(host=str(chosen_host), port=chosen_port, apps=tuple(apps), limits=limits,
                  debug=debug or _bool("BROADCASTER_DEBUG", env.get("BROADCASTER_DEBUG", "0")),
                  development_app=dev, scaling=load_scaling(env, scaling_doc),
                  **_operations(env, server, options or {}, str(chosen_host)))


# [server] option -> environment variable, for the options of docs/operations.md.
_OPERATIONS_ENV = {
    "path": "REVERB_SERVER_PATH",
    "tls_cert": "BROADCASTER_TLS_CERT",
    "tls_key": "BROADCASTER_TLS_KEY",
    "metrics": "BROADCASTER_METRICS",
    "metrics_host": "BROADCASTER_METRICS_HOST",
    "metrics_port": "BROADCASTER_METRICS_PORT",
    "shutdown_grace": "BROADCASTER_SHUTDOWN_GRACE",
}


def _operations(env: Mapping[str, str], server: Mapping[str, Any], cli: Mapping[str, Any],
                host: str) -> dict[str, Any]:
    """Path prefix, TLS, metrics and shutdown options, validated."""
    def pick(name: str) -> Any:
        if cli.get(name) is not None:
            return cli[name]
        value = env.get(_OPERATIONS_ENV[name])
        return value if value not in (None, "") else server.get(name)

    try:
        path = normalize_prefix(str(pick("path") or ""))
    except ValueError as exc:
        raise ConfigError(f"path ({_OPERATIONS_ENV['path']}): {exc}") from None
    cert, key = pick("tls_cert"), pick("tls_key")
    if bool(cert) != bool(key):
        raise ConfigError("tls_cert and tls_key go together: set both (PEM files) or neither")
    for name, file in (("tls_cert", cert), ("tls_key", key)):
        if file and not Path(str(file)).is_file():
            raise ConfigError(f"{name}: {file} is not a readable file")
    metrics = pick("metrics")
    metrics_port = _int("metrics_port", 9601 if pick("metrics_port") is None
                        else pick("metrics_port"))
    if not 0 <= metrics_port <= 65535:
        raise ConfigError(f"metrics_port must be between 0 and 65535, got {metrics_port}")
    grace = pick("shutdown_grace")
    return {
        "path": path,
        "tls_cert": str(cert) if cert else None,
        "tls_key": str(key) if key else None,
        "metrics": True if metrics is None else _bool("metrics", metrics),
        "metrics_host": str(pick("metrics_host") or host),
        "metrics_port": metrics_port,
        "shutdown_grace": 5.0 if grace is None else _float("shutdown_grace", grace),
    }
