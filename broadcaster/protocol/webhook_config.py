"""Webhook configuration: what one configured receiver is, and reading it from TOML or JSON.

Pure and stdlib-only; `broadcaster.config` turns the `ValueError`s into `ConfigError`s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

EVENT_TYPES = frozenset({
    "channel_occupied", "channel_vacated", "member_added", "member_removed",
    "client_event", "cache_miss", "subscription_count",
})

# Headers the dispatcher sets itself; a custom header may not replace them.
RESERVED_HEADERS = frozenset({
    "x-pusher-key", "x-pusher-signature", "content-type", "content-length", "host",
    "transfer-encoding", "connection",
})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_WEBHOOK_KEYS = ("url", "event_types", "filter", "headers")
_FILTER_KEYS = ("channel_name_starts_with",)


@dataclass(frozen=True, slots=True)
class Webhook:
    """One configured receiver: a URL, the event types it wants, an optional channel-name
    prefix (`filter = {channel_name_starts_with = "..."}`) and extra request headers."""

    url: str
    event_types: frozenset[str]
    channel_prefix: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def matches_channel(self, event: Mapping[str, Any]) -> bool:
        return str(event.get("channel", "")).startswith(self.channel_prefix)

    def wants(self, event: Mapping[str, Any]) -> bool:
        """Whether this webhook receives `event` (its type and its channel's prefix)."""
        return event.get("name") in self.event_types and self.matches_channel(event)


def parse_webhooks(value: Any) -> tuple[Webhook, ...]:
    """Webhooks from a TOML array of tables or a JSON text (`REVERB_APP_WEBHOOKS`).

    Raises `ValueError` with a message naming the entry and what is wrong.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON: {exc}") from None
    if not isinstance(value, list):
        raise ValueError("must be a list of webhooks ({url, event_types, filter?, headers?})")
    return tuple(_parse_webhook(i + 1, entry) for i, entry in enumerate(value))


def _parse_webhook(number: int, entry: Any) -> Webhook:
    where = f"webhook #{number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table/object, got {entry!r}")
    unknown = sorted(set(entry) - set(_WEBHOOK_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(_WEBHOOK_KEYS)}")
    url = entry.get("url")
    if not isinstance(url, str):
        raise ValueError(f"{where}: url is required and must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: url must be http:// or https:// with a host, got {url!r}")
    types = entry.get("event_types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ValueError(f"{where}: event_types must be a non-empty list of event names")
    bad = sorted(set(types) - EVENT_TYPES)
    if bad:
        raise ValueError(f"{where}: unknown event type(s) {', '.join(bad)}; "
                         f"known: {', '.join(sorted(EVENT_TYPES))}")
    return Webhook(url=url, event_types=frozenset(types),
                   channel_prefix=_parse_filter(where, entry.get("filter")),
                   headers=_parse_headers(where, entry.get("headers")))


def _parse_filter(where: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, dict) or set(value) - set(_FILTER_KEYS):
        raise ValueError(f"{where}: filter must be {{channel_name_starts_with = \"prefix\"}}, "
                         f"got {value!r}")
    prefix = value.get("channel_name_starts_with", "")
    if not isinstance(prefix, str):
        raise ValueError(f"{where}: filter.channel_name_starts_with must be a string")
    return prefix


def _parse_headers(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ValueError(f"{where}: headers must be a table of name = \"value\"")
    headers = []
    for name, text in value.items():
        if not isinstance(text, str) or not _TOKEN.match(name) or "\n" in text or "\r" in text:
            raise ValueError(f"{where}: header {name!r} must be a valid name with a string value")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"{where}: header {name!r} is set by the server and cannot be "
                             "replaced")
        headers.append((name, text))
    return tuple(headers)
