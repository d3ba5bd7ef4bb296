"""The hub interface: what the WebSocket and HTTP layers need from channel state.

Every method is a coroutine so that an implementation spread over many nodes (Redis) can consult
shared state; the in-process implementation completes without suspending.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import SPECIAL_PREFIXES, USER_CHANNEL_PREFIX
from broadcaster.protocol.errors import PusherError
from broadcaster.protocol.presence import Member
from broadcaster.protocol.users import SignedInUser


class Subscriber(Protocol):
    """A local connection the hub can deliver to."""

    @property
    def socket_id(self) -> str: ...

    def send_frame(self, frame: bytes) -> None:
        """Queue an already-encoded WebSocket frame; must not block or raise."""

    def close_with(self, error: PusherError) -> None:
        """Send `pusher:error` and close the socket with the error's code; must not raise."""


@dataclass(frozen=True, slots=True)
class CachedEvent:
    """The last event of a cache channel: the frame text as published, and seconds left."""

    text: str
    ttl: float


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """What the HTTP API reports about one channel."""

    subscription_count: int
    user_count: int | None  # presence channels only

    @property
    def occupied(self) -> bool:
        return self.subscription_count > 0


LifecycleEvent = dict[str, Any]
"""One event in Pusher's webhook shape, e.g. `{"name": "channel_occupied", "channel": "c"}`.

Names: channel_occupied, channel_vacated, member_added, member_removed (with `user_id`),
client_event (`event`, `data`, `socket_id`, `user_id` on presence), cache_miss,
subscription_count (`subscription_count`). The hub decides when they happen (once per cluster
when the hub is shared); what to do with them (webhooks) is the observer's business.
client_event is reported by the node that received the client's frame (through the observer).
"""

LifecycleObserver = Callable[[App, LifecycleEvent], None]


def _ignore(app: App, event: LifecycleEvent) -> None:
    """The default observer: nobody listens."""


class DeliveryCounter:
    """Frames and bytes handed to local subscribers: one `add` per publish, not per recipient."""

    __slots__ = ("bytes", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0

    def add(self, frames: int, size: int) -> None:
        self.frames += frames
        self.bytes += frames * size


class Hub(ABC):
    """Channel membership and publishing for every app served by this node.

    `observer` is called synchronously with every lifecycle event; it must not block or raise.
    """

    def __init__(self) -> None:
        self.observer: LifecycleObserver = _ignore
        self.delivered = DeliveryCounter()

    @abstractmethod
    async def connect(self, app: App, subscriber: Subscriber) -> int:
        """Register a new connection; returns the app's connection count including it."""

    @abstractmethod
    async def disconnect(self, app: App, subscriber: Subscriber) -> None:
        """Forget a connection; it must already have left its channels."""

    @abstractmethod
    async def join(self, app: App, channel: str, subscriber: Subscriber,
                   member: Member | None) -> dict[str, Any] | None:
        """Subscribe; on presence channels returns the roster (user_id -> user_info).

        Announces `member_added` to the others on the user's first connection. Raises
        `SubscriptionError` when the channel refuses the member (e.g. presence channel full).
        """

    @abstractmethod
    async def leave(self, app: App, channel: str, subscriber: Subscriber,
                    member: Member | None) -> None:
        """Unsubscribe; announces `member_removed` on the user's last connection."""

    def publish(self, app: App, channel: str, text: str,
                except_socket_id: str | None = None) -> Coroutine[Any, Any, None]:
        """Deliver the text frame `text` to every subscriber of `channel` but one.

        `#server-to-user-{id}` goes to the user's connections instead, and a cache channel
        remembers `text` first. A plain method returning the implementation's coroutine: the
        common case adds no coroutine of its own to every publish.
        """
        if channel.startswith(SPECIAL_PREFIXES):
            return self._publish_special(app, channel, text, except_socket_id)
        return self._publish_channel(app, channel, text, except_socket_id)

    async def _publish_special(self, app: App, channel: str, text: str,
                               except_socket_id: str | None) -> None:
        if channel.startswith(USER_CHANNEL_PREFIX):
            user_id = channel[len(USER_CHANNEL_PREFIX):]
            await self.publish_to_user(app, user_id, text, except_socket_id)
            return
        await self._remember_cached(app, channel, text)
        await self._publish_channel(app, channel, text, except_socket_id)

    async def _publish_channel(self, app: App, channel: str, text: str,
                               except_socket_id: str | None) -> None:
        """Deliver `text` to the subscribers of `channel` (no special routing)."""
        waiting = self.start_publish(app, channel, text, except_socket_id)
        if waiting is not None:
            await waiting

    @abstractmethod
    def start_publish(self, app: App, channel: str, text: str,
                      except_socket_id: str | None) -> asyncio.Future[Any] | None:
        """`publish` for a channel with no special routing (not `#server-to-user-`, not a
        cache channel), without a coroutine: None once it is done, else a future done once it
        is (the HTTP API answers a publish from its callback, with no task per request)."""

    @abstractmethod
    async def _remember_cached(self, app: App, channel: str, text: str) -> None:
        """Keep `text` as the last event of the cache channel for `app.cache_ttl` seconds,
        even while nobody is subscribed."""

    @abstractmethod
    async def channels(self, app: App, prefix: str = "") -> dict[str, ChannelStats]:
        """Occupied channels whose name starts with `prefix`."""

    @abstractmethod
    async def channel(self, app: App, channel: str) -> ChannelStats:
        """Stats of one channel (zero counts when nobody is subscribed)."""

    @abstractmethod
    async def users(self, app: App, channel: str) -> list[str]:
        """User ids present on a presence channel."""

    @abstractmethod
    async def connection_count(self, app: App) -> int:
        """Open connections of an app."""

    # -- after a subscription ---------------------------------------------------------------

    @abstractmethod
    async def subscribed(self, app: App, channel: str, subscriber: Subscriber) -> None:
        """Called right after `subscriber` was sent `subscription_succeeded` for `channel`.

        On a cache channel, replays the cached event unchanged to `subscriber`, or sends it
        `pusher:cache_miss` and reports `cache_miss`. On non-presence channels of apps with
        `subscription_count`, announces the new count to every subscriber (throttled above
        100 subscribers) and reports `subscription_count`.
        """

    @abstractmethod
    async def cached_event(self, app: App, channel: str) -> CachedEvent | None:
        """The event a new subscriber of cache channel `channel` would get, if any."""

    @abstractmethod
    async def housekeeping(self) -> None:
        """Periodic work, driven by the node's sweep about once a second: send subscription
        counts that were held back by the throttle, forget expired cache entries."""

    # -- signed-in users ----------------------------------------------------------------------

    @abstractmethod
    async def sign_in(self, app: App, subscriber: Subscriber, user: SignedInUser) -> list[str]:
        """Register `subscriber` as a connection of `user`; returns which ids of the user's
        watchlist are online now. On the user's first connection, watchers of the user get
        `pusher_internal:watchlist_events` `online`."""

    @abstractmethod
    async def sign_out(self, app: App, subscriber: Subscriber, user: SignedInUser) -> None:
        """Forget `subscriber` as a connection of `user` (it closed, or signed in again);
        on the user's last connection, watchers get `offline`."""

    @abstractmethod
    async def user_connections(self, app: App, user_id: str) -> int:
        """How many signed-in connections `user_id` has."""

    @abstractmethod
    async def publish_to_user(self, app: App, user_id: str, text: str,
                              except_socket_id: str | None = None) -> None:
        """Deliver `text` to every signed-in connection of `user_id`, and nobody else.

        `publish` on `#server-to-user-{id}` comes here."""

    @abstractmethod
    async def terminate_user(self, app: App, user_id: str, error: PusherError) -> int:
        """Close every signed-in connection of `user_id` with `error`; returns how many."""
