"""HTTP routes: `/up`, `/ready` and the Pusher REST API, mapped onto `protocol.http_api` and the
hub, inside the optional path prefix."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from broadcaster.protocol import frames
from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import SPECIAL_PREFIXES, ChannelKind, channel_kind
from broadcaster.protocol.errors import UserTerminated
from broadcaster.protocol.http_api import (
    HttpError,
    Trigger,
    authenticate,
    cache_info,
    channel_info,
    parse_batch_body,
    parse_events_body,
    parse_info_query,
    parse_signed_query,
    user_id_problem,
)
from broadcaster.protocol.paths import strip_prefix
from broadcaster.protocol.rate_limit import TokenBucket, retry_after_header
from broadcaster.server.state import NodeState

_APP_ROUTE = re.compile(
    r"^/apps/([^/]+)/(events|batch_events|channels|connections)(?:/([^/]+)(/users)?)?$"
)
# `(?:/apps/{id})?`: the Python SDK (3.3.4) posts to /users/{id}/terminate_connections without
# the app prefix; the app is then the one whose key signed the request.
# Metric labels for HTTP routes: a fixed set, never the raw path (unbounded label values).
_ROUTE_LABEL = re.compile(
    r"^/apps/[^/]+/(events|batch_events|channels|connections)(/[^/]+)?(/users)?$"
)
_USER_ROUTE = re.compile(r"^(?:/apps/([^/]+))?/users/([^/]+)/terminate_connections$")

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, bytes] | tuple[int, bytes, Headers]
"""Status and JSON body, optionally with extra headers (e.g. `Retry-After`)."""


_LABELS: dict[str, str] = {}  # path -> label, for the publish paths (a handful per server)
_MAX_LABELS = 1_000


def route_label(path: str) -> str:
    """The metrics label of a request path (prefix already stripped)."""
    label = _LABELS.get(path)
    if label is not None:
        return label
    if path in ("/up", "/ready"):
        return path[1:]
    head, _, tail = path.rpartition("/")
    if (tail in ("events", "batch_events") and head.startswith("/apps/") and len(head) > 6
            and head.count("/") == 2):
        if len(_LABELS) < _MAX_LABELS:
            _LABELS[path] = tail  # one entry per app id and publish route
        return tail  # the publish routes, without the regular expression
    match = _ROUTE_LABEL.match(path)
    if match is None:
        return "other"
    resource, channel, users = match.groups()
    if resource == "channels" and channel:
        return "channel_users" if users else "channel"
    return str(resource)


OK_EMPTY: Response = (200, b"{}")  # the answer to almost every publish


@dataclass(frozen=True, slots=True)
class Pending:
    """`response` is the answer once `waiting` is done (unless it failed)."""

    waiting: asyncio.Future[Any]
    response: Response


Answer = Response | Pending | Coroutine[Any, Any, Response]


def _json(status: int, body: Any) -> Response:
    return status, json.dumps(body, separators=(",", ":")).encode()


def handle_http(node: NodeState, method: str, target: str, body: bytes) -> Answer:
    """Answer one HTTP request: the response, or a `Pending` one, or a coroutine returning it.
    Never raises for client mistakes: they become 4xx bodies."""
    full_path, _, query = target.partition("?")
    try:
        path = strip_prefix(node.path_prefix, full_path)
        if path is None:  # outside the prefix: only the probes, for load balancers
            path = full_path if full_path in ("/up", "/ready") else "/-"
        if path == "/up":
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "Method not allowed")
            return _json(200, {"health": "OK"})
        if path == "/ready":
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "Method not allowed")
            return readiness(node)
        match = _APP_ROUTE.match(path)
        user_match = _USER_ROUTE.match(path) if match is None else None
        if match is not None:
            app_id, resource, channel, users = match.groups()
        elif user_match is not None:
            app_id, channel, users = user_match.group(1), user_match.group(2), None
            resource = "terminate_connections"
        else:
            raise HttpError(404, "Not found")
        params, signed_query = parse_signed_query(query)
        app = node.apps.by_id(app_id) if app_id is not None else node.apps.by_key(
            params.get("auth_key", ""))
        if app is None:
            raise HttpError(404, f"Unknown app {unquote(app_id or '')[:64]!r}")
        _authenticate(app, method, path, full_path, params, body, signed_query)
        if not app.enabled:
            raise HttpError(403, "Application is disabled")
        if app.api_rate_limit is not None:
            limited = _over_rate_limit(node, app)
            if limited is not None:
                return limited
        if channel and "%" in channel:
            channel = unquote(channel)
        if resource == "events" and method == "POST" and channel is None:
            trigger = parse_events_body(body, app)
            if not trigger.info and not any(name.startswith(SPECIAL_PREFIXES)
                                            for name in trigger.channels):
                return _publish_at_once(node, app, trigger)
            return _answered(_trigger_answer(node, app, trigger))
        return _answered(_route(node, app, method, resource, channel or None, bool(users),
                                params, body))
    except HttpError as exc:
        return exc.status, exc.body()


def _publish_at_once(node: NodeState, app: App, trigger: Trigger) -> Response | Pending:
    """The publish of one event to plain channels: no coroutine, no task (the common case)."""
    waiting = []
    for name in trigger.channels:
        started = node.hub.start_publish(
            app, name, frames.event_frame(trigger.name, name, trigger.data), trigger.socket_id)
        if started is not None:
            waiting.append(started)
    if not waiting:
        return OK_EMPTY
    return Pending(waiting[0] if len(waiting) == 1 else asyncio.gather(*waiting), OK_EMPTY)


async def _answered(routing: Coroutine[Any, Any, Response]) -> Response:
    try:
        return await routing
    except HttpError as exc:
        return exc.status, exc.body()


def readiness(node: NodeState) -> Response:
    """200 while serving; 503 once shutdown began, so load balancers stop sending clients."""
    if node.accepting:
        return _json(200, {"ready": True})
    return _json(503, {"ready": False, "reason": "shutting down"})


def _authenticate(app: App, method: str, path: str, full_path: str, params: dict[str, str],
                  body: bytes, signed_query: str | None) -> None:
    """Behind a prefix, accept a signature over the path without it (what pusher-http-php and
    Laravel send: their prefix lives in the HTTP client's base URL) or with it (a client that
    signs the URL it calls)."""
    now = time.time()
    try:
        authenticate(app, method, path, params, body, now, signed_query)
    except HttpError:
        if full_path == path:
            raise
        authenticate(app, method, full_path, params, body, now, signed_query)


def _over_rate_limit(node: NodeState, app: App) -> Response | None:
    """Take one request from the app's bucket; a 429 with `Retry-After` when it is empty."""
    assert app.api_rate_limit is not None
    bucket = node.api_limiters.get(app.id)
    if bucket is None:
        bucket = node.api_limiters[app.id] = TokenBucket(app.api_rate_limit)
    wait = bucket.take(time.monotonic())
    if not wait:
        return None
    status, body = _json(429, {"error": f"Rate limit exceeded ({app.api_rate_limit:g} "
                                        "requests per second)"})[:2]
    return status, body, [(b"retry-after", retry_after_header(wait).encode())]


async def _route(node: NodeState, app: App, method: str, resource: str, channel: str | None,
                 users: bool, params: dict[str, str], body: bytes) -> Response:
    hub = node.hub
    if resource == "terminate_connections":
        assert channel is not None  # the user id, from the path
        if method != "POST":
            raise HttpError(405, "Method not allowed")
        problem = user_id_problem(channel)
        if problem:
            raise HttpError(400, problem)
        await hub.terminate_user(app, channel, UserTerminated("Connection terminated by the app"))
        return OK_EMPTY
    if resource in ("events", "batch_events"):
        if method != "POST" or channel is not None:
            raise HttpError(405, "Method not allowed")
        if resource == "events":
            return await _trigger_answer(node, app, parse_events_body(body, app))
        triggers = parse_batch_body(body, app)
        results = [await _publish(node, app, t) for t in triggers]
        if any(t.info for t in triggers):
            return _json(200, {"batch": [next(iter(r.values()), {}) for r in results]})
        return OK_EMPTY
    if method != "GET":
        raise HttpError(405, "Method not allowed")
    if resource == "connections":
        return _json(200, {"connections": await hub.connection_count(app)})
    if channel is None:
        prefix = params.get("filter_by_prefix", "")
        wanted = parse_info_query(params)
        if "user_count" in wanted and channel_kind(prefix) is not ChannelKind.PRESENCE:
            raise HttpError(400, "info=user_count needs filter_by_prefix=presence-")
        occupied = await hub.channels(app, prefix)
        return _json(200, {"channels": {
            name: channel_info(s.subscription_count, s.user_count, wanted)
            for name, s in occupied.items()
        }})
    if users:
        if channel_kind(channel) is not ChannelKind.PRESENCE:
            raise HttpError(400, "Users can only be listed for presence channels")
        return _json(200, {"users": [{"id": uid} for uid in await hub.users(app, channel)]})
    attributes = parse_info_query(params, channel)
    one = await hub.channel(app, channel)
    answer = {"occupied": one.occupied,
              **channel_info(one.subscription_count, one.user_count, attributes)}
    if "cache" in attributes:
        cached = await hub.cached_event(app, channel)
        if cached is not None:
            answer["cache"] = cache_info(cached.text, cached.ttl)
    return _json(200, answer)


async def _trigger_answer(node: NodeState, app: App, trigger: Trigger) -> Response:
    """Publish one event (any channels); the `info` attributes per channel when asked for."""
    info = await _publish(node, app, trigger)
    return _json(200, {"channels": info}) if trigger.info else OK_EMPTY


async def _publish(node: NodeState, app: App, trigger: Trigger) -> dict[str, Any]:
    """Publish one event to each of its channels; returns the `info` attributes per channel."""
    info: dict[str, Any] = {}
    for channel in trigger.channels:
        text = frames.event_frame(trigger.name, channel, trigger.data)
        await node.hub.publish(app, channel, text, trigger.socket_id)
        if trigger.info:
            stats = await node.hub.channel(app, channel)
            info[channel] = channel_info(stats.subscription_count, stats.user_count, trigger.info)
    return info
