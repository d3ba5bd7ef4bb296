"""The Pusher HTTP API: request authentication, body validation and response bodies.

Independent of the HTTP library: callers pass the method, path, decoded query and raw body.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import (
    ChannelKind,
    channel_kind,
    channel_name_problem,
    event_name_problem,
    is_cache_channel,
)
from broadcaster.protocol.encoding import dump_json, parse_json, utf8_size_exceeds
from broadcaster.protocol.presence import MAX_USER_ID_LENGTH
from broadcaster.protocol.signatures import body_md5, verify_api_signature

TIMESTAMP_GRACE = 600
MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH_SIZE = 10
_SOCKET_ID = re.compile(r"^\d+\.\d+$")


class HttpError(Exception):
    """An API failure with its HTTP status; the body is `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"error": self.message}).encode()


def authenticate(app: App, method: str, path: str, params: dict[str, str], body: bytes,
                 now: float, signed_query: str | None = None) -> None:
    """Check a request signed as Pusher's REST API requires; raises `HttpError(401)` if not.

    The signature covers the query exactly as sent, so `body_md5` on a GET (which the Python SDK
    always adds) is verified rather than refused. `signed_query` is the part of the query the
    signature covers when `parse_signed_query` already found it.
    """
    if not ("auth_signature" in params and "auth_key" in params and "auth_timestamp" in params
            and "auth_version" in params):
        for name in ("auth_key", "auth_timestamp", "auth_version", "auth_signature"):
            if name not in params:
                raise HttpError(401, f"Missing {name} parameter")
    if not hmac.compare_digest(params["auth_key"].encode(), app.key.encode()):
        raise HttpError(401, "Unknown auth_key")
    try:
        timestamp = int(params["auth_timestamp"])
    except ValueError:
        raise HttpError(401, "auth_timestamp must be an integer") from None
    if abs(now - timestamp) > TIMESTAMP_GRACE:
        raise HttpError(
            401, f"Timestamp expired: {timestamp} is more than {TIMESTAMP_GRACE}s from {int(now)}"
        )
    given_md5 = params.get("body_md5")
    if body and given_md5 is None:
        raise HttpError(401, "Missing body_md5 parameter")
    if given_md5 is not None and not hmac.compare_digest(given_md5, body_md5(body)):
        raise HttpError(401, "body_md5 does not match the request body")
    if not verify_api_signature(app.secret, method, path, params, signed_query):
        raise HttpError(401, "Invalid signature: expected HMAC SHA256 of METHOD\\nPATH\\nQUERY")


def parse_query(query: str) -> dict[str, str]:
    """The query string as a dict (last value wins, blank values kept), decoded like
    `urllib.parse.parse_qsl`; a query without `%` or `+` (what the SDKs send) is only split."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    params: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


# The query every Pusher SDK sends on a publish: these parameters in this (sorted) order,
# nothing escaped, the signature last. Then the signed part is the query up to the signature.
_SDK_QUERY = re.compile(
    r"(auth_key=([^&=%+]*)&auth_timestamp=([^&=%+]*)&auth_version=([^&=%+]*)"
    r"(?:&body_md5=([^&=%+]*))?)&auth_signature=([^&=%+]*)"
)


def parse_signed_query(query: str) -> tuple[dict[str, str], str | None]:
    """`parse_query(query)`, and the part of it the signature covers when the query has the
    SDKs' usual form (already sorted, nothing to decode), else None: then the signed string
    is built from the parameters."""
    match = _SDK_QUERY.fullmatch(query)
    if match is None:
        return parse_query(query), None
    signed, key, timestamp, version, md5, signature = match.groups()
    params = {"auth_key": key, "auth_timestamp": timestamp, "auth_version": version}
    if md5 is not None:
        params["body_md5"] = md5
    params["auth_signature"] = signature
    return params, signed


class Trigger(NamedTuple):
    """One event to publish (a tuple: built once per request, cheaper than a frozen dataclass)."""

    name: str
    data: str
    channels: tuple[str, ...]
    socket_id: str | None
    info: tuple[str, ...]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        # Pusher bodies are UTF-8; decoding first skips json's encoding detection on bytes.
        value = parse_json(body.decode())
    except ValueError as exc:
        raise HttpError(400, f"Request body must be JSON ({exc})") from None
    if not isinstance(value, dict):
        raise HttpError(400, "Request body must be a JSON object")
    return value


_TRIGGER_INFO = ("user_count", "subscription_count")


def _info_fields(value: object, allowed: tuple[str, ...] = _TRIGGER_INFO) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, str):
        raise HttpError(400, "'info' must be a comma-separated string")
    fields = tuple(part.strip() for part in value.split(",") if part.strip())
    for field in fields:
        if field not in allowed:
            raise HttpError(400, f"Unsupported info attribute '{field[:50]}'")
    return fields


def parse_trigger(item: dict[str, Any], app: App, *, batch: bool = False) -> Trigger:
    """Validate one event object (`events` body, or one `batch` item)."""
    name = item.get("name")
    problem = event_name_problem(name)
    if problem:
        raise HttpError(400, problem)
    data = item.get("data")
    if data is None:
        raise HttpError(400, "Missing 'data'")
    if not isinstance(data, str):
        try:
            data = dump_json(data)
        except ValueError:
            raise HttpError(400, "'data' is nested too deeply") from None
    if utf8_size_exceeds(data, app.max_event_data_size):
        raise HttpError(413, f"Event data is larger than {app.max_event_data_size} bytes")
    if batch or "channel" in item:
        channels: Any = [item.get("channel")]
    else:
        channels = item.get("channels")
    if not isinstance(channels, list) or not channels:
        raise HttpError(400, "Missing 'channels' (a list) or 'channel' (a string)")
    if len(channels) > MAX_CHANNELS_PER_EVENT:
        raise HttpError(400, f"An event may go to at most {MAX_CHANNELS_PER_EVENT} channels")
    for channel in channels:
        problem = channel_name_problem(channel)
        if problem:
            raise HttpError(400, f"{problem}: {str(channel)[:200]!r}")
    socket_id = item.get("socket_id")
    if socket_id is not None and not (isinstance(socket_id, str) and _SOCKET_ID.match(socket_id)):
        raise HttpError(400, "socket_id must look like '123.456'")
    info = _info_fields(item.get("info"))
    if "user_count" in info and any(
        channel_kind(c) is not ChannelKind.PRESENCE for c in channels
    ):
        raise HttpError(400, "info=user_count is only available for presence channels")
    return Trigger(name, data, tuple(channels), socket_id, info)  # type: ignore[arg-type]


def parse_events_body(body: bytes, app: App) -> Trigger:
    """The body of `POST /apps/{id}/events`."""
    return parse_trigger(_json_object(body), app)


def parse_batch_body(body: bytes, app: App) -> list[Trigger]:
    """The body of `POST /apps/{id}/batch_events`: `{"batch": [event, ...]}`, at most 10."""
    batch = _json_object(body).get("batch")
    if not isinstance(batch, list) or not batch:
        raise HttpError(400, "Missing 'batch' (a non-empty list)")
    if len(batch) > MAX_BATCH_SIZE:
        raise HttpError(400, f"A batch may hold at most {MAX_BATCH_SIZE} events")
    triggers = []
    for item in batch:
        if not isinstance(item, dict):
            raise HttpError(400, "Every batch item must be an object")
        triggers.append(parse_trigger(item, app, batch=True))
    return triggers


def parse_info_query(params: dict[str, str], channel: str | None = None) -> tuple[str, ...]:
    """The `info` query parameter of the channel endpoints (`cache` on one channel only)."""
    if channel is None:
        info = _info_fields(params.get("info"))
    else:
        info = _info_fields(params.get("info"), ("user_count", "subscription_count", "cache"))
        if "cache" in info and not is_cache_channel(channel):
            raise HttpError(400, "info=cache is only available for cache channels")
    if "user_count" in info and channel is not None and (
        channel_kind(channel) is not ChannelKind.PRESENCE
    ):
        raise HttpError(400, "info=user_count is only available for presence channels")
    return info


def channel_info(subscription_count: int, user_count: int | None,
                 info: tuple[str, ...]) -> dict[str, Any]:
    """One channel's attributes as requested by `info`."""
    result: dict[str, Any] = {}
    if "user_count" in info and user_count is not None:
        result["user_count"] = user_count
    if "subscription_count" in info:
        result["subscription_count"] = subscription_count
    return result


def cache_info(text: str, ttl: float) -> dict[str, Any]:
    """The `cache` attribute of one channel: the cached event's name and data (as relayed) and
    the whole seconds it has left."""
    event = json.loads(text)
    return {"event": event.get("event"), "data": event.get("data"), "ttl": max(1, int(ttl))}


def user_id_problem(user_id: str) -> str | None:
    """Why `user_id` cannot name a user in `/users/{user_id}/...`, or None."""
    if not user_id:
        return "User id must not be empty"
    if len(user_id) > MAX_USER_ID_LENGTH:
        return f"User id is longer than {MAX_USER_ID_LENGTH} characters"
    return None
