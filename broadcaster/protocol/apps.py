"""An application as the protocol sees it: credentials, limits and switches."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from broadcaster.protocol.webhook_config import Webhook


@dataclass(frozen=True, slots=True)
class App:
    """One Pusher application. Defaults follow Laravel Reverb where Pusher leaves a choice open."""

    id: str
    key: str
    secret: str
    enabled: bool = True
    activity_timeout: int = 30
    ping_interval: int = 60
    pong_timeout: int = 30
    max_message_size: int = 10_000
    max_event_data_size: int = 10_240
    max_connections: int | None = None
    allowed_origins: tuple[str, ...] = field(default=("*",))
    client_events: bool = True
    max_client_events_per_second: int = 10
    max_presence_members: int = 100
    max_presence_user_info_size: int = 1_000
    cache_ttl: int = 1_800
    subscription_count: bool = False
    user_authentication_timeout: int | None = None
    webhooks: tuple[Webhook, ...] = ()
    # HTTP API requests per second for this app (bursts up to one second's worth); None = off.
    api_rate_limit: float | None = None
    # Reverb's per-connection message limit: max_attempts messages per decay_seconds, else 4301.
    rate_limiting_enabled: bool = False
    rate_limit_max_attempts: int = 60
    rate_limit_decay_seconds: int = 60
    rate_limit_terminate: bool = False


def origin_allowed(app: App, origin: str | None) -> bool:
    """Whether a WebSocket from `origin` may connect.

    Patterns match the origin's host only (`*.example.com`), as Reverb's `allowed_origins` do.
    A missing Origin header (non-browser clients) is allowed only when every origin is.
    """
    if "*" in app.allowed_origins:
        return True
    if not origin:
        return False
    host = urlsplit(origin).hostname or origin
    return any(fnmatch.fnmatchcase(host, pattern) for pattern in app.allowed_origins)


class AppRegistry:
    """The configured apps, looked up by key (WebSocket) or id (HTTP API)."""

    def __init__(self, apps: list[App]) -> None:
        self._by_key = {app.key: app for app in apps}
        self._by_id = {app.id: app for app in apps}

    def by_key(self, key: str) -> App | None:
        return self._by_key.get(key)

    def by_id(self, app_id: str) -> App | None:
        return self._by_id.get(app_id)

    def __iter__(self) -> Iterator[App]:
        return iter(self._by_id.values())
