"""Scaling out over Redis: one typed, validated `ScalingConfig` from Reverb's environment names
and/or a TOML `[scaling]` table.

`load_scaling(env, table)` returns None when scaling is off (the default, as in Reverb) and raises
`ConfigError` naming the setting when something cannot be used. The
environment wins over the table, as everywhere else in the configuration.

Environment names (TOML key in brackets):
  REVERB_SCALING_ENABLED [enabled]        false
  REVERB_SCALING_CHANNEL [channel]        'reverb'
  REVERB_SCALING_PREFIX  [prefix]         the channel name; every key and pub/sub channel of a
                                          deployment starts with `prefix:`
  REVERB_SCALING_PARTITIONS [partitions]  pub/sub topics per deployment; 1, or 16 on a Cluster
  REDIS_URL [url]                         redis:// or rediss:// (TLS), overrides host/port/...
  REDIS_HOST/PORT/USERNAME/PASSWORD/DB    127.0.0.1 / 6379 / - / - / 0
  REDIS_TLS [tls]                         false (true with rediss://)
  REDIS_TIMEOUT [timeout]                 5 seconds, to connect and for one command
  REDIS_SENTINELS [sentinels]             host:port,host:port: use Sentinel
  REDIS_SENTINEL_MASTER [sentinel_master] 'mymaster' (the monitored service name)
  REDIS_SENTINEL_USERNAME/PASSWORD        credentials of the Sentinels themselves
  REDIS_CLUSTER [cluster]                 true: a Redis Cluster reached through host:port
  REDIS_CLUSTER_NODES [cluster_nodes]     host:port,...: a Redis Cluster reached through these
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn
from urllib.parse import unquote, urlsplit

from broadcaster.config_values import ConfigError
from broadcaster.config_values import parse_bool as _bool

Mode = Literal["standalone", "sentinel", "cluster"]
Address = tuple[str, int]

DEFAULT_CHANNEL = "reverb"
CLUSTER_PARTITIONS = 16

# Keys of the TOML table and the environment variable each one is read from.
_NAMES: dict[str, str] = {
    "enabled": "REVERB_SCALING_ENABLED",
    "channel": "REVERB_SCALING_CHANNEL",
    "prefix": "REVERB_SCALING_PREFIX",
    "partitions": "REVERB_SCALING_PARTITIONS",
    "url": "REDIS_URL",
    "host": "REDIS_HOST",
    "port": "REDIS_PORT",
    "username": "REDIS_USERNAME",
    "password": "REDIS_PASSWORD",
    "db": "REDIS_DB",
    "tls": "REDIS_TLS",
    "timeout": "REDIS_TIMEOUT",
    "sentinels": "REDIS_SENTINELS",
    "sentinel_master": "REDIS_SENTINEL_MASTER",
    "sentinel_username": "REDIS_SENTINEL_USERNAME",
    "sentinel_password": "REDIS_SENTINEL_PASSWORD",
    "cluster": "REDIS_CLUSTER",
    "cluster_nodes": "REDIS_CLUSTER_NODES",
}
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True, slots=True)
class ScalingConfig:
    """Where the nodes of one deployment meet, and how to reach it.

    `mode` says which of `host`/`port` (standalone), `sentinels` + `sentinel_master` (Sentinel)
    or `cluster_nodes` (Cluster seeds) is used. Passwords are left out of `repr`.
    """

    mode: Mode = "standalone"
    channel: str = DEFAULT_CHANNEL
    prefix: str = DEFAULT_CHANNEL
    partitions: int = 1
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls: bool = False
    timeout: float = 5.0
    sentinels: tuple[Address, ...] = ()
    sentinel_master: str = "mymaster"
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    cluster_nodes: tuple[Address, ...] = ()

    def key(self, *parts: str) -> str:
        """A Redis key or pub/sub channel name of this deployment: `prefix:part:part`."""
        return ":".join((self.prefix, *parts))


def _fail(message: str) -> NoReturn:
    raise ConfigError(message)


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        _fail(f"{name} must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        _fail(f"{name} must be an integer, got {value!r}")
    if not low <= number <= high:
        _fail(f"{name} must be between {low} and {high}, got {number}")
    return number


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        _fail(f"{name} must be a number of seconds, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        _fail(f"{name} must be a number of seconds, got {value!r}")
    if not 0 < number <= 3600:
        _fail(f"{name} must be more than 0 and at most 3600 seconds, got {value!r}")
    return number


def _text(name: str, value: Any, *, strip: bool = True) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        _fail(f"{name} must be a string, got {value!r}")
    text = str(value).strip() if strip else str(value)
    return text or None


def _secret(name: str, value: Any) -> str | None:
    """A password is taken as written: spaces may be part of it."""
    return _text(name, value, strip=False)


def _identifier(name: str, value: Any) -> str:
    text = _text(name, value)
    if text is None or not _NAME_PATTERN.match(text):
        _fail(f"{name} must be a non-empty name of letters, digits, '_', '-' or '.', "
              f"got {value!r}")
    return text


def _address(name: str, text: str) -> Address:
    host, colon, port = text.strip().rpartition(":")
    if not colon or not host:
        _fail(f"{name}: {text!r} must be host:port")
    return host.strip("[]"), _int(name, port, 1, 65535)


def _addresses(name: str, value: Any) -> tuple[Address, ...]:
    if isinstance(value, str):
        items = [part for part in (p.strip() for p in value.split(",")) if part]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        _fail(f"{name} must be a list of host:port, got {value!r}")
    if not items:
        _fail(f"{name} must name at least one host:port")
    return tuple(_address(name, item) for item in items)


def _from_url(url: str) -> dict[str, Any]:
    name = _NAMES["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        _fail(f"{name} must start with redis:// or rediss://, got {parts.scheme or url!r}")
    try:
        port = parts.port
    except ValueError:
        _fail(f"{name} has an invalid port: {url!r}")
    values: dict[str, Any] = {"tls": parts.scheme == "rediss"}
    if parts.hostname:
        values["host"] = parts.hostname
    if port is not None:
        values["port"] = port
    if parts.username:
        values["username"] = unquote(parts.username)
    if parts.password:
        values["password"] = unquote(parts.password)
    path = parts.path.strip("/")
    if path:
        values["db"] = _int(f"{name} (database number)", path, 0, 1_000_000)
    return values


def load_scaling(env: Mapping[str, str], table: Mapping[str, Any] | None = None,
                 ) -> ScalingConfig | None:
    """The scaling configuration, or None when scaling is not enabled.

    `table` is the parsed `[scaling]` TOML table, if any. Raises `ConfigError`.
    """
    table = dict(table or {})
    unknown = sorted(set(table) - set(_NAMES))
    if unknown:
        _fail(f"[scaling]: unknown option(s) {', '.join(unknown)}; known: {', '.join(_NAMES)}")

    def raw(key: str) -> tuple[str, Any]:
        """(the name to report, the value) from the environment, else the table."""
        value = env.get(_NAMES[key])
        if value is not None and value.strip() != "":
            return _NAMES[key], value
        return f"[scaling] {key}", table.get(key)

    def get(key: str) -> Any:
        return raw(key)[1]

    if get("enabled") is None or not _bool(*raw("enabled")):
        return None

    values: dict[str, Any] = {}
    url = _text(*raw("url"))
    if url is not None:
        values.update(_from_url(url))
    for key in ("host", "username"):
        if get(key) is not None and key not in values:
            values[key] = _text(*raw(key))
    if get("password") is not None and "password" not in values:
        values["password"] = _secret(*raw("password"))
    if get("port") is not None and "port" not in values:
        values["port"] = _int(*raw("port"), 1, 65535)
    if get("db") is not None and "db" not in values:
        values["db"] = _int(*raw("db"), 0, 1_000_000)
    if get("tls") is not None:
        values["tls"] = values.get("tls", False) or _bool(*raw("tls"))
    if get("timeout") is not None:
        values["timeout"] = _seconds(*raw("timeout"))

    channel = _identifier(*raw("channel")) if get("channel") is not None else DEFAULT_CHANNEL
    values["channel"] = channel
    values["prefix"] = _identifier(*raw("prefix")) if get("prefix") is not None else channel

    sentinels = _addresses(*raw("sentinels")) if get("sentinels") is not None else ()
    cluster_nodes = _addresses(*raw("cluster_nodes")) if get("cluster_nodes") is not None else ()
    cluster = bool(cluster_nodes) or (get("cluster") is not None and _bool(*raw("cluster")))
    if sentinels and cluster:
        _fail(f"{_NAMES['sentinels']} and {_NAMES['cluster']}/{_NAMES['cluster_nodes']} "
              "cannot both be set: choose Sentinel or Cluster")
    mode: Mode = "sentinel" if sentinels else "cluster" if cluster else "standalone"
    values["mode"] = mode
    if sentinels:
        values["sentinels"] = sentinels
        if get("sentinel_master") is not None:
            values["sentinel_master"] = _identifier(*raw("sentinel_master"))
        values["sentinel_username"] = _text(*raw("sentinel_username"))
        values["sentinel_password"] = _secret(*raw("sentinel_password"))
    if cluster:
        if values.get("db", 0) != 0:
            _fail(f"{_NAMES['db']} must be 0 with a Redis Cluster (it has only database 0)")
        values["cluster_nodes"] = cluster_nodes or (
            (values.get("host", "127.0.0.1"), values.get("port", 6379)),
        )
    default_partitions = CLUSTER_PARTITIONS if cluster else 1
    values["partitions"] = (_int(*raw("partitions"), 1, 1024) if get("partitions") is not None
                            else default_partitions)
    return ScalingConfig(**values)
