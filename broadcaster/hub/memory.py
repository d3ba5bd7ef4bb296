"""The in-process hub: one node, state in dicts, each event encoded once per publish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from broadcaster.hub.base import CachedEvent, ChannelStats, Hub, Subscriber
from broadcaster.hub.users import UserDirectory
from broadcaster.protocol import frames
from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import (
    ChannelKind,
    channel_kind,
    is_cache_channel,
)
from broadcaster.protocol.counts import count_update_due
from broadcaster.protocol.errors import PusherError, SubscriptionError
from broadcaster.protocol.presence import Member, PresenceRoster
from broadcaster.protocol.users import SignedInUser

FrameEncoder = Callable[[str], bytes]
Clock = Callable[[], float]

# Expired cache entries are dropped when looked up; a full pass also runs this often, so cache
# channels nobody subscribes to again do not pile up.
_CACHE_SWEEP_INTERVAL = 60.0


class _Channel:
    __slots__ = ("count_sent_at", "roster", "subscribers")

    def __init__(self, presence: bool) -> None:
        self.subscribers: dict[str, Subscriber] = {}
        self.roster: PresenceRoster | None = PresenceRoster() if presence else None
        self.count_sent_at: float | None = None


class MemoryHub(Hub):
    """Channel state for a single node.

    `encode` turns a text message into the bytes of one WebSocket frame; it is called once per
    publish and the same bytes go to every subscriber. `clock` (monotonic seconds) dates cache
    entries and throttled subscription counts.
    """

    def __init__(self, encode: FrameEncoder, clock: Clock = time.monotonic) -> None:
        super().__init__()
        self._encode = encode
        self._clock = clock
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._connections: dict[str, int] = {}
        # (app id, channel) -> (frame text, expiry on `clock`)
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}
        self._next_cache_sweep = 0.0
        # Channels whose changed count the throttle held back, with their app.
        self._pending_counts: dict[tuple[str, str], App] = {}
        self._users = UserDirectory()

    async def connect(self, app: App, subscriber: Subscriber) -> int:
        count = self._connections.get(app.id, 0) + 1
        self._connections[app.id] = count
        return count

    async def disconnect(self, app: App, subscriber: Subscriber) -> None:
        count = self._connections.get(app.id, 0) - 1
        if count > 0:
            self._connections[app.id] = count
        else:
            self._connections.pop(app.id, None)

    async def join(self, app: App, channel: str, subscriber: Subscriber,
                   member: Member | None) -> dict[str, Any] | None:
        key = (app.id, channel)
        state = self._channels.get(key)
        if state is None:
            state = self._channels[key] = _Channel(presence=member is not None)
        if member is None or state.roster is None:
            state.subscribers[subscriber.socket_id] = subscriber
            if len(state.subscribers) == 1:
                self.observer(app, {"name": "channel_occupied", "channel": channel})
            return None
        roster = state.roster
        if not roster.has_user(member.user_id) and roster.user_count >= app.max_presence_members:
            if not state.subscribers:
                del self._channels[key]
            raise SubscriptionError(
                channel, f"Presence channel is full ({app.max_presence_members} members)",
                status=403, kind="LimitReached",
            )
        state.subscribers[subscriber.socket_id] = subscriber
        if len(state.subscribers) == 1:
            self.observer(app, {"name": "channel_occupied", "channel": channel})
        if roster.add(subscriber.socket_id, member):
            self._deliver(state, frames.member_added(channel, member.user_id, member.user_info),
                          subscriber.socket_id)
            self.observer(app, {"name": "member_added", "channel": channel,
                                "user_id": member.user_id})
        return roster.members()

    async def leave(self, app: App, channel: str, subscriber: Subscriber,
                    member: Member | None) -> None:
        key = (app.id, channel)
        state = self._channels.get(key)
        if state is None or state.subscribers.pop(subscriber.socket_id, None) is None:
            return
        if member is not None and state.roster is not None and state.roster.remove(
            subscriber.socket_id, member.user_id
        ):
            self._deliver(state, frames.member_removed(channel, member.user_id), None)
            self.observer(app, {"name": "member_removed", "channel": channel,
                                "user_id": member.user_id})
        if not state.subscribers:
            del self._channels[key]
            self._pending_counts.pop(key, None)
            self.observer(app, {"name": "channel_vacated", "channel": channel})
        elif app.subscription_count and state.roster is None:
            self._count_changed(app, channel, state)

    async def _remember_cached(self, app: App, channel: str, text: str) -> None:
        self._cache[(app.id, channel)] = (text, self._clock() + app.cache_ttl)

    def start_publish(self, app: App, channel: str, text: str,
                      except_socket_id: str | None) -> asyncio.Future[Any] | None:
        state = self._channels.get((app.id, channel))
        if state is not None:
            self._deliver(state, text, except_socket_id)
        return None

    def _deliver(self, state: _Channel, text: str, except_socket_id: str | None) -> None:
        frame = self._encode(text)
        self.delivered.add(len(state.subscribers) - (except_socket_id in state.subscribers),
                           len(frame))
        if except_socket_id is None:
            for subscriber in state.subscribers.values():
                subscriber.send_frame(frame)
            return
        for socket_id, subscriber in state.subscribers.items():
            if socket_id != except_socket_id:
                subscriber.send_frame(frame)

    async def channels(self, app: App, prefix: str = "") -> dict[str, ChannelStats]:
        return {
            name: self._stats(state)
            for (app_id, name), state in self._channels.items()
            if app_id == app.id and name.startswith(prefix)
        }

    async def channel(self, app: App, channel: str) -> ChannelStats:
        state = self._channels.get((app.id, channel))
        if state is None:
            return ChannelStats(0, 0 if channel_kind(channel) is ChannelKind.PRESENCE else None)
        return self._stats(state)

    async def users(self, app: App, channel: str) -> list[str]:
        state = self._channels.get((app.id, channel))
        if state is None or state.roster is None:
            return []
        return list(state.roster.members())

    async def connection_count(self, app: App) -> int:
        return self._connections.get(app.id, 0)

    # -- after a subscription: cache replay and subscription counts --------------------------

    async def subscribed(self, app: App, channel: str, subscriber: Subscriber) -> None:
        if is_cache_channel(channel):
            cached = self._fresh_cache(app.id, channel)
            if cached is not None:
                subscriber.send_frame(self._encode(cached.text))
            else:
                subscriber.send_frame(self._encode(frames.cache_miss(channel)))
                self.observer(app, {"name": "cache_miss", "channel": channel})
        if app.subscription_count:
            state = self._channels.get((app.id, channel))
            if state is not None and state.roster is None:
                self._count_changed(app, channel, state)

    async def cached_event(self, app: App, channel: str) -> CachedEvent | None:
        return self._fresh_cache(app.id, channel)

    def _fresh_cache(self, app_id: str, channel: str) -> CachedEvent | None:
        entry = self._cache.get((app_id, channel))
        if entry is None:
            return None
        ttl = entry[1] - self._clock()
        if ttl <= 0:
            del self._cache[(app_id, channel)]
            return None
        return CachedEvent(entry[0], ttl)

    def _count_changed(self, app: App, channel: str, state: _Channel) -> None:
        now = self._clock()
        if count_update_due(len(state.subscribers), state.count_sent_at, now):
            self._send_count(app, channel, state, now)
        else:
            self._pending_counts[(app.id, channel)] = app

    def _send_count(self, app: App, channel: str, state: _Channel, now: float) -> None:
        count = len(state.subscribers)
        state.count_sent_at = now
        self._pending_counts.pop((app.id, channel), None)
        self._deliver(state, frames.subscription_count(channel, count), None)
        self.observer(app, {"name": "subscription_count", "channel": channel,
                            "subscription_count": count})

    async def housekeeping(self) -> None:
        now = self._clock()
        for key, app in list(self._pending_counts.items()):
            state = self._channels.get(key)
            if state is None:
                del self._pending_counts[key]
            elif count_update_due(len(state.subscribers), state.count_sent_at, now):
                self._send_count(app, key[1], state, now)
        if now >= self._next_cache_sweep:
            self._next_cache_sweep = now + _CACHE_SWEEP_INTERVAL
            for key in [k for k, (_, expiry) in self._cache.items() if expiry <= now]:
                del self._cache[key]

    # -- signed-in users -----------------------------------------------------------------------

    async def sign_in(self, app: App, subscriber: Subscriber, user: SignedInUser) -> list[str]:
        online = self._users.online(app.id, user.watchlist)
        if self._users.add(app.id, subscriber, user):
            self._tell_watchers(app, user.id, "online", subscriber.socket_id)
        return online

    async def sign_out(self, app: App, subscriber: Subscriber, user: SignedInUser) -> None:
        if self._users.remove(app.id, subscriber, user):
            self._tell_watchers(app, user.id, "offline", subscriber.socket_id)

    def _tell_watchers(self, app: App, user_id: str, name: str, except_socket_id: str) -> None:
        watchers = self._users.watchers(app.id, user_id, except_socket_id)
        if watchers:
            frame = self._encode(frames.watchlist_events(name, [user_id]))
            for watcher in watchers:
                watcher.send_frame(frame)

    async def user_connections(self, app: App, user_id: str) -> int:
        return len(self._users.connections(app.id, user_id))

    async def publish_to_user(self, app: App, user_id: str, text: str,
                              except_socket_id: str | None = None) -> None:
        connections = self._users.connections(app.id, user_id)
        if connections:
            frame = self._encode(text)
            for connection in connections:
                if connection.socket_id != except_socket_id:
                    connection.send_frame(frame)

    async def terminate_user(self, app: App, user_id: str, error: PusherError) -> int:
        # The closed sockets sign out when their connection is cleaned up, which announces
        # `offline` to watchers exactly as an ordinary disconnection does.
        connections = self._users.connections(app.id, user_id)
        for connection in connections:
            connection.close_with(error)
        return len(connections)

    @staticmethod
    def _stats(state: _Channel) -> ChannelStats:
        users = state.roster.user_count if state.roster is not None else None
        return ChannelStats(len(state.subscribers), users)
