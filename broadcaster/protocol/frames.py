"""Client frames parsed into small typed events; server frames built once, as text.

Pusher double-encodes: the envelope is JSON and its `data` is itself a JSON *string*.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from broadcaster.protocol.encoding import dump_json, parse_json, utf8_size_exceeds
from broadcaster.protocol.encoding import quote_json_string as _quote
from broadcaster.protocol.errors import InvalidMessage, MessageTooLarge


@dataclass(frozen=True, slots=True)
class Ping:
    """`pusher:ping`: answer with `pusher:pong`."""


@dataclass(frozen=True, slots=True)
class Pong:
    """`pusher:pong`: the client answered our ping."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    channel: str
    auth: str | None
    channel_data: str | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A `client-*` event to relay to the channel's other subscribers.

    `data` is kept as the JSON text the client sent, so it is relayed unchanged.
    """

    event: str
    channel: str
    data: str


@dataclass(frozen=True, slots=True)
class SignIn:
    """`pusher:signin`: fields as sent (None when missing or not a string), checked later."""

    auth: str | None
    user_data: str | None


ClientMessage = Ping | Pong | Subscribe | Unsubscribe | ClientEvent | SignIn


def _object(value: Any, what: str) -> dict[str, Any]:
    """`value` as a dict; clients may send `data` either as an object or as a JSON string."""
    if isinstance(value, str):
        try:
            value = parse_json(value)
        except ValueError:
            raise InvalidMessage(f"{what} must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidMessage(f"{what} must be a JSON object")
    return value


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidMessage(f"'{key}' must be a string")


def parse_client_message(text: str, max_size: int) -> ClientMessage:
    """Parse one text frame from a client.

    Raises `MessageTooLarge` above `max_size` bytes and `InvalidMessage` for anything that is not
    a well-formed Pusher message. Channel names and auth are checked later, by the connection.
    """
    if utf8_size_exceeds(text, max_size):
        raise MessageTooLarge(f"Maximum message size exceeded ({max_size} bytes)")
    try:
        message = parse_json(text)
    except ValueError:
        raise InvalidMessage("Invalid message format: not JSON") from None
    if not isinstance(message, dict):
        raise InvalidMessage("Invalid message format: not a JSON object")
    event = message.get("event")
    if not isinstance(event, str):
        raise InvalidMessage("Invalid message format: 'event' must be a string")

    if event == "pusher:ping":
        return Ping()
    if event == "pusher:pong":
        return Pong()
    if event == "pusher:subscribe":
        data = _object(message.get("data"), "pusher:subscribe data")
        channel = data.get("channel")
        if not isinstance(channel, str):
            raise InvalidMessage("pusher:subscribe needs data.channel")
        return Subscribe(channel, _optional_str(data, "auth"), _optional_str(data, "channel_data"))
    if event == "pusher:unsubscribe":
        data = _object(message.get("data"), "pusher:unsubscribe data")
        channel = data.get("channel")
        if not isinstance(channel, str):
            raise InvalidMessage("pusher:unsubscribe needs data.channel")
        return Unsubscribe(channel)
    if event == "pusher:signin":
        data = _object(message.get("data"), "pusher:signin data")
        auth, user_data = data.get("auth"), data.get("user_data")
        return SignIn(auth if isinstance(auth, str) else None,
                      user_data if isinstance(user_data, str) else None)
    if event.startswith("client-"):
        channel = message.get("channel")
        if not isinstance(channel, str):
            raise InvalidMessage("Client event needs a 'channel' string")
        if "data" not in message:
            raise InvalidMessage("Client event needs 'data'")
        try:
            relayed = dump_json(message["data"])
        except ValueError:
            raise InvalidMessage("Client event data is nested too deeply") from None
        return ClientEvent(event, channel, relayed)
    raise InvalidMessage(f"Unsupported event '{event[:50]}'")


def event_frame(event: str, channel: str | None, data: str, user_id: str | None = None) -> str:
    """A server-to-client event frame; `data` is relayed as the string given.

    The same text `json.dumps` gives for `{"event", "channel", "data", "user_id"}` with compact
    separators, built from escaped strings: no dict and no encoder object per event.
    """
    text = '{"event":' + _quote(event)
    if channel is not None:
        text += ',"channel":' + _quote(channel)
    text += ',"data":' + _quote(data)
    if user_id is not None:
        text += ',"user_id":' + _quote(user_id)
    return text + "}"


def client_event_frame(event: ClientEvent, user_id: str | None) -> str:
    """The frame relayed to the other subscribers; `data` keeps the client's JSON value."""
    head = {"event": event.event, "channel": event.channel}
    text = json.dumps(head, separators=(",", ":"))[:-1] + ',"data":' + event.data
    if user_id is not None:
        text += ',"user_id":' + json.dumps(user_id)
    return text + "}"


def client_event_lifecycle(event: ClientEvent, socket_id: str,
                           user_id: str | None) -> dict[str, Any]:
    """The `client_event` lifecycle event (Pusher's webhook shape); `data` is a string: the
    client's string as sent, or the JSON text of any other value."""
    data: Any = event.data
    if data.startswith('"'):
        data = json.loads(data)
    lifecycle = {"name": "client_event", "channel": event.channel, "event": event.event,
                 "data": data, "socket_id": socket_id}
    if user_id is not None:
        lifecycle["user_id"] = user_id
    return lifecycle


def connection_established(socket_id: str, activity_timeout: int) -> str:
    data = (f'{{"socket_id":{_quote(socket_id)},"activity_timeout":{int(activity_timeout)}}}')
    return event_frame("pusher:connection_established", None, data)


PONG = event_frame("pusher:pong", None, "{}")
PING = event_frame("pusher:ping", None, "{}")


def subscription_succeeded(channel: str, data: str = "{}") -> str:
    return event_frame("pusher_internal:subscription_succeeded", channel, data)


def presence_data(members: dict[str, Any]) -> str:
    """The `subscription_succeeded` data of a presence channel: unique user ids and their info."""
    ids = list(members)
    return json.dumps({"presence": {"ids": ids, "hash": members, "count": len(ids)}})


def member_added(channel: str, user_id: str, user_info: Any) -> str:
    data = json.dumps({"user_id": user_id, "user_info": user_info})
    return event_frame("pusher_internal:member_added", channel, data)


def member_removed(channel: str, user_id: str) -> str:
    return event_frame("pusher_internal:member_removed", channel, json.dumps({"user_id": user_id}))


def cache_miss(channel: str) -> str:
    """Sent to a new subscriber of a cache channel that holds no event; it carries no data."""
    return json.dumps({"event": "pusher:cache_miss", "channel": channel}, separators=(",", ":"))


def subscription_count(channel: str, count: int) -> str:
    data = json.dumps({"subscription_count": count}, separators=(",", ":"))
    return event_frame("pusher_internal:subscription_count", channel, data)


def signin_success(user_data: str) -> str:
    """`user_data` is echoed as the very string the app signed."""
    return event_frame("pusher:signin_success", None, json.dumps({"user_data": user_data}))


def watchlist_events(name: str, user_ids: list[str]) -> str:
    """One `pusher_internal:watchlist_events` frame with a single `online`/`offline` entry."""
    data = json.dumps({"events": [{"name": name, "user_ids": user_ids}]}, separators=(",", ":"))
    return event_frame("pusher_internal:watchlist_events", None, data)
