"""The hub of a node in a cluster: local sockets in memory, shared state and messages in Redis.

Contract, on top of `Hub`'s:
- Every event (HTTP API, client event, member_added/removed, subscription counts, server-to-user,
  terminate, watchlist changes) is ONE bus message; each node, the sender included, delivers it
  to its own sockets when it comes back from Redis. One topic per channel gives every node the
  same order per channel, and `except_socket_id` travels with the message.
- Decisions (first subscriber anywhere, a user's first or last connection anywhere, a full
  presence channel) are taken by one Lua script (`redis_scripts`); the node whose script decided
  announces the frame and reports the lifecycle event, so webhooks fire once per cluster.
- Delivery never reads Redis: it only walks `LocalState`.
- While Redis is unreachable the node answers from its own sockets only, delivers its own
  events locally, and reports no lifecycle events; when Redis is back it writes its whole local
  state again (`NodeCare.reregister`), which also repairs Redis after it lost its data.
- A presence socket is told each member change once (`LocalState` views), and after any node
  wrote its share again, the difference from Redis's roster (`RosterSync`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from broadcaster.hub import envelope as wire
from broadcaster.hub.base import CachedEvent, ChannelStats, Hub, Subscriber
from broadcaster.hub.envelope import Envelope, Kind
from broadcaster.hub.local_state import FrameEncoder, LocalState
from broadcaster.hub.redis_announce import announce_dropped
from broadcaster.hub.redis_care import NodeCare
from broadcaster.hub.redis_inbox import Inbox
from broadcaster.hub.redis_rosters import RosterSync
from broadcaster.hub.redis_state import SharedState
from broadcaster.protocol import frames
from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import (
    USER_CHANNEL_PREFIX,
    ChannelKind,
    channel_kind,
    is_cache_channel,
)
from broadcaster.protocol.counts import THROTTLE_ABOVE
from broadcaster.protocol.errors import PusherError, SubscriptionError
from broadcaster.protocol.presence import Member
from broadcaster.protocol.users import SignedInUser
from broadcaster.scaling import ScalingConfig

log = logging.getLogger("broadcaster.redis")
T = TypeVar("T")

_CHANNEL_KINDS = (Kind.EVENT, Kind.ELSEWHERE)  # routed by channel, in order with its events

# A socket that disconnected while one of its joins or sign-ins waited for Redis is remembered
# this long, so the late answer is undone instead of leaving a ghost subscription behind.
_GONE_FOR = 60.0


class RedisHub(Hub):
    """Channel state of one node of a cluster (see the module for the contract).

    `apps` are every app the deployment serves (a dead node's share is removed app by app).
    Call `start` before use and `close` after the server stopped.
    """

    def __init__(self, config: ScalingConfig, apps: Sequence[App], encode: FrameEncoder, *,
                 node_id: str | None = None, heartbeat_interval: float = 5.0,
                 heartbeat_ttl: float = 15.0) -> None:
        super().__init__()
        # Imported here: the redis package is needed only when scaling is configured.
        from broadcaster.hub.redis_bus import RedisBus
        from broadcaster.hub.redis_clients import command_client
        from broadcaster.hub.topics import Topics

        self.config = config
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.apps = {app.id: app for app in apps}
        self.local = LocalState(encode, self.delivered)
        self._topics = Topics(config.prefix, config.partitions)
        self._client = command_client(config)
        self.state = SharedState(config, self._client, self.node_id)
        self.care = NodeCare(self, heartbeat_interval=heartbeat_interval,
                             heartbeat_ttl=heartbeat_ttl)
        self.rosters = RosterSync(self)
        self.inbox = Inbox(self.local, self.node_id, self.rosters.peer_registered)
        self.bus = RedisBus(config, self._topics.names, self.inbox.received,
                            on_reconnected=self._on_reconnected, node_id=self.node_id)
        self._gone: dict[str, float] = {}
        self._pending_counts: dict[tuple[str, str], App] = {}

    async def start(self, wait: float = 2.0) -> bool:
        """Connect in the background and wait up to `wait` s; returns whether Redis answered.
        The node serves either way and keeps retrying."""
        self.bus.start()
        self.care.start()
        connected = await self.bus.wait_connected(wait)
        if connected:
            await self.care.reregister_quietly()
        return connected

    async def close(self) -> None:
        """Remove this node's share of the shared state and disconnect."""
        await self.rosters.stop()
        await self.care.stop()
        if self.bus.connected:
            removed = 0
            for app in self.apps.values():
                dropped = await self.care.final(partial(SharedState.drop_node, app_id=app.id,
                                                        node_id=self.node_id))
                if dropped is not None:
                    removed += 1
                    announce_dropped(self, app, dropped)
            # Leave the registry only when the share is gone; otherwise the heartbeat expires
            # and another node cleans up, as after a crash.
            if removed == len(self.apps):
                await self.care.registry.stop(deregister=True)
            await self.bus.flush(self.config.timeout)
        await self.bus.close()
        await self._client.aclose()

    # -- plumbing -------------------------------------------------------------------------------

    async def shared(self, operation: Callable[[SharedState], Awaitable[T]]) -> T | None:
        """Run `operation` on the shared state; None when Redis is unreachable or failed."""
        return await self.care.guarded(operation)

    def send(self, message: Envelope) -> None:
        """Hand `message` to every node; to this node's sockets directly while Redis is away."""
        routed = message.channel if message.kind in _CHANNEL_KINDS else (
            USER_CHANNEL_PREFIX + message.channel)
        if self.bus.connected:
            try:
                payload = wire.encode(message)
            except wire.EnvelopeError:
                log.warning("event too large for the bus; delivered on this node only",
                            extra={"channel": message.channel})
            else:
                if self.bus.publish(self._topics.for_channel(message.app_id, routed), payload):
                    return
        self.inbox.apply(message)

    def event(self, app: App, channel: str, text: str, except_socket_id: str | None) -> None:
        self.send(Envelope(self.node_id, app.id, channel, text, except_socket_id))

    async def _on_reconnected(self) -> None:
        await self.care.reregister()

    def _is_gone(self, subscriber: Subscriber) -> bool:
        return subscriber.socket_id in self._gone

    # -- connections and channels ---------------------------------------------------------------

    async def connect(self, app: App, subscriber: Subscriber) -> int:
        here = self.local.connected(app.id, 1)
        total = await self.shared(lambda s: s.connections(app.id, 1))
        return here if total is None else total

    async def disconnect(self, app: App, subscriber: Subscriber) -> None:
        self._gone[subscriber.socket_id] = time.monotonic()
        self.local.connected(app.id, -1)
        await self.shared(lambda s: s.connections(app.id, -1))

    async def join(self, app: App, channel: str, subscriber: Subscriber,
                   member: Member | None) -> dict[str, Any] | None:
        joined = await self.shared(
            lambda s: s.join(app.id, channel, member, app.max_presence_members))
        if joined is not None and joined.full:
            raise _full(app, channel)
        if joined is not None and self._is_gone(subscriber):
            await self.shared(lambda s: s.leave(app.id, channel, member))
            return joined.roster
        local = self.local.channel(app.id, channel)
        if (joined is None and member is not None and local is not None
                and local.roster is not None and not local.roster.has_user(member.user_id)
                and local.roster.user_count >= app.max_presence_members):
            raise _full(app, channel)
        state, first_here = self.local.add(app.id, channel, subscriber, member)
        roster = joined.roster if joined is not None else (
            None if state.roster is None else state.roster.members())
        if roster is not None:  # what the socket is told: where its view starts
            self.local.told(app.id, channel, subscriber.socket_id, roster)
        if joined is None:  # Redis away: this node's view, announced to this node's sockets
            state.total = len(state.subscribers)
            if first_here and member is not None:
                self._member_added(app, channel, member, subscriber)
            return roster
        state.total = joined.total
        if joined.total == 1:
            self.observer(app, {"name": "channel_occupied", "channel": channel})
        if joined.first and member is not None:
            self._member_added(app, channel, member, subscriber)
            self.observer(app, {"name": "member_added", "channel": channel,
                                "user_id": member.user_id})
        return roster

    def _member_added(self, app: App, channel: str, member: Member,
                      subscriber: Subscriber) -> None:
        text = frames.member_added(channel, member.user_id, member.user_info)
        self.event(app, channel, text, subscriber.socket_id)

    async def leave(self, app: App, channel: str, subscriber: Subscriber,
                    member: Member | None) -> None:
        removed = self.local.remove(app.id, channel, subscriber, member)
        if removed is None:
            return
        state, last_here = removed
        left = await self.shared(lambda s: s.leave(app.id, channel, member))
        if left is None:
            if last_here and member is not None:
                self.event(app, channel, frames.member_removed(channel, member.user_id), None)
            return
        total, last = left
        if last and member is not None:
            self.event(app, channel, frames.member_removed(channel, member.user_id), None)
            self.observer(app, {"name": "member_removed", "channel": channel,
                                "user_id": member.user_id})
        if total == 0:
            self._pending_counts.pop((app.id, channel), None)
            self.observer(app, {"name": "channel_vacated", "channel": channel})
        elif total > 0 and app.subscription_count and state.roster is None:
            await self._count_changed(app, channel, total)

    async def _remember_cached(self, app: App, channel: str, text: str) -> None:
        await self.shared(lambda s: s.cache(app.id, channel, text, app.cache_ttl))

    def start_publish(self, app: App, channel: str, text: str,
                      except_socket_id: str | None) -> asyncio.Future[bool] | None:
        message = Envelope(self.node_id, app.id, channel, text, except_socket_id)
        if self.bus.connected:
            try:
                payload = wire.encode(message)
            except wire.EnvelopeError:
                pass
            else:
                # Answer once Redis has the event: the publisher's next event, even through
                # another node, then reaches every subscriber after this one.
                echoed = self.bus.publish_echoed(self._topics.for_channel(app.id, channel),
                                                 payload)
                if echoed is not None:
                    echoed.add_done_callback(partial(self._settled, message))
                    return echoed
        self.send(message)
        return None

    def _settled(self, message: Envelope, echoed: asyncio.Future[bool]) -> None:
        """A message lost with Redis is delivered here (once: the bus's connection is gone, so
        it cannot come back); one still on its way is left alone, never delivered twice."""
        if not echoed.cancelled() and echoed.result() is False and not self.bus.connected:
            self.send(message)

    async def channels(self, app: App, prefix: str = "") -> dict[str, ChannelStats]:
        counts = await self.shared(lambda s: s.channel_counts(app.id))
        if counts is None:
            counts = {name: len(state.subscribers)
                      for name, state in self.local.app_channels(app.id).items()}
        counts = {name: n for name, n in counts.items() if n > 0 and name.startswith(prefix)}
        presence = [name for name in counts if channel_kind(name) is ChannelKind.PRESENCE]
        users = await self.shared(lambda s: s.member_counts(app.id, presence))
        if users is None:
            users = [self._local_users(app, name) for name in presence]
        per_channel = dict(zip(presence, users, strict=True))
        return {name: ChannelStats(n, per_channel.get(name)) for name, n in counts.items()}

    async def channel(self, app: App, channel: str) -> ChannelStats:
        presence = channel_kind(channel) is ChannelKind.PRESENCE
        count = await self.shared(lambda s: s.subscriptions(app.id, channel))
        if count is None:
            state = self.local.channel(app.id, channel)
            count = 0 if state is None else len(state.subscribers)
        if not presence:
            return ChannelStats(count, None)
        users = await self.shared(lambda s: s.member_counts(app.id, [channel]))
        return ChannelStats(count, self._local_users(app, channel) if users is None else users[0])

    def _local_users(self, app: App, channel: str) -> int:
        state = self.local.channel(app.id, channel)
        return 0 if state is None or state.roster is None else state.roster.user_count

    async def users(self, app: App, channel: str) -> list[str]:
        members = await self.shared(lambda s: s.members(app.id, channel))
        if members is not None:
            return members
        state = self.local.channel(app.id, channel)
        return [] if state is None or state.roster is None else list(state.roster.members())

    async def connection_count(self, app: App) -> int:
        total = await self.shared(lambda s: s.connection_total(app.id))
        return self.local.connections.get(app.id, 0) if total is None else total

    # -- after a subscription: cache replay and subscription counts ----------------------------

    async def subscribed(self, app: App, channel: str, subscriber: Subscriber) -> None:
        if is_cache_channel(channel):
            cached = await self.cached_event(app, channel)
            if cached is not None:
                subscriber.send_frame(self.local.encode(cached.text))
            else:
                subscriber.send_frame(self.local.encode(frames.cache_miss(channel)))
                self.observer(app, {"name": "cache_miss", "channel": channel})
        if app.subscription_count:
            state = self.local.channel(app.id, channel)
            if state is not None and state.roster is None:
                await self._count_changed(app, channel, state.total)

    async def cached_event(self, app: App, channel: str) -> CachedEvent | None:
        cached = await self.shared(lambda s: s.cached(app.id, channel))
        return None if cached is None else CachedEvent(*cached)

    async def _count_changed(self, app: App, channel: str, total: int) -> None:
        """Announce `total` now, or leave it to housekeeping when the throttle says wait."""
        if total <= THROTTLE_ABOVE or await self.shared(
                lambda s: s.count_send_allowed(app.id, channel)):
            self.send_count(app, channel, total)
        else:
            self._pending_counts[(app.id, channel)] = app

    def send_count(self, app: App, channel: str, total: int) -> None:
        self._pending_counts.pop((app.id, channel), None)
        self.event(app, channel, frames.subscription_count(channel, total), None)
        self.observer(app, {"name": "subscription_count", "channel": channel,
                            "subscription_count": total})

    async def housekeeping(self) -> None:
        now = time.monotonic()
        for socket_id, since in list(self._gone.items()):
            if now - since > _GONE_FOR:
                del self._gone[socket_id]
        for (app_id, channel), app in list(self._pending_counts.items()):
            total = await self.shared(partial(SharedState.subscriptions, app_id=app_id,
                                              channel=channel))
            if total is None:
                continue
            if total == 0:
                self._pending_counts.pop((app_id, channel), None)
            elif await self.shared(partial(SharedState.count_send_allowed, app_id=app_id,
                                           channel=channel)):
                self.send_count(app, channel, total)

    # -- signed-in users ------------------------------------------------------------------------

    async def sign_in(self, app: App, subscriber: Subscriber, user: SignedInUser) -> list[str]:
        signed = await self.shared(lambda s: s.sign(app.id, user.id, 1, user.watchlist))
        if signed is not None and self._is_gone(subscriber):
            await self.shared(lambda s: s.sign(app.id, user.id, -1))
            return []
        online_here = self.local.users.online(app.id, user.watchlist)
        first_here = self.local.users.add(app.id, subscriber, user)
        if signed is None:
            if first_here:
                self.watch(app, user.id, "online", subscriber.socket_id)
            return online_here
        count, online = signed
        if count == 1:
            self.watch(app, user.id, "online", subscriber.socket_id)
        return online

    async def sign_out(self, app: App, subscriber: Subscriber, user: SignedInUser) -> None:
        here = self.local.users.connections(app.id, user.id)
        if not any(c.socket_id == subscriber.socket_id for c in here):
            return
        last_here = self.local.users.remove(app.id, subscriber, user)
        signed = await self.shared(lambda s: s.sign(app.id, user.id, -1))
        if (last_here if signed is None else signed[0] == 0):
            self.watch(app, user.id, "offline", subscriber.socket_id)

    def watch(self, app: App, user_id: str, name: str, except_socket_id: str | None) -> None:
        self.send(Envelope(self.node_id, app.id, user_id, name, except_socket_id, Kind.WATCH))

    async def user_connections(self, app: App, user_id: str) -> int:
        count = await self.shared(lambda s: s.user_connections(app.id, user_id))
        return len(self.local.users.connections(app.id, user_id)) if count is None else count

    async def publish_to_user(self, app: App, user_id: str, text: str,
                              except_socket_id: str | None = None) -> None:
        self.send(Envelope(self.node_id, app.id, user_id, text, except_socket_id, Kind.USER))

    async def terminate_user(self, app: App, user_id: str, error: PusherError) -> int:
        count = await self.user_connections(app, user_id)
        text = json.dumps({"code": error.code, "message": error.message})
        self.send(Envelope(self.node_id, app.id, user_id, text, None, Kind.TERMINATE))
        return count

def _full(app: App, channel: str) -> SubscriptionError:
    return SubscriptionError(channel,
                             f"Presence channel is full ({app.max_presence_members} members)",
                             status=403, kind="LimitReached")
