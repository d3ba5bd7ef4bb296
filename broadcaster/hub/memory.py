"""The in-process hub: one node, state in dicts, each event encoded once per publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broadcaster.hub.base import ChannelStats, Hub, Subscriber
from broadcaster.protocol import frames
from broadcaster.protocol.apps import App
from broadcaster.protocol.errors import SubscriptionError
from broadcaster.protocol.presence import Member, PresenceRoster

FrameEncoder = Callable[[str], bytes]


class _Channel:
    __slots__ = ("roster", "subscribers")

    def __init__(self, presence: bool) -> None:
        self.subscribers: dict[str, Subscriber] = {}
        self.roster: PresenceRoster | None = PresenceRoster() if presence else None


class MemoryHub(Hub):
    """Channel state for a single node.

    `encode` turns a text message into the bytes of one WebSocket frame; it is called once per
    publish and the same bytes go to every subscriber.
    """

    def __init__(self, encode: FrameEncoder) -> None:
        super().__init__()
        self._encode = encode
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._connections: dict[str, int] = {}

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
            self.observer(app, {"name": "channel_vacated", "channel": channel})

    async def publish(self, app: App, channel: str, text: str,
                      except_socket_id: str | None = None) -> None:
        state = self._channels.get((app.id, channel))
        if state is not None:
            self._deliver(state, text, except_socket_id)

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
            return ChannelStats(0, 0 if channel.startswith("presence-") else None)
        return self._stats(state)

    async def users(self, app: App, channel: str) -> list[str]:
        state = self._channels.get((app.id, channel))
        if state is None or state.roster is None:
            return []
        return list(state.roster.members())

    async def connection_count(self, app: App) -> int:
        return self._connections.get(app.id, 0)

    @staticmethod
    def _stats(state: _Channel) -> ChannelStats:
        users = state.roster.user_count if state.roster is not None else None
        return ChannelStats(len(state.subscribers), users)
