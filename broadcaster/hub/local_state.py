"""What one node's own sockets are doing, for a hub whose shared state lives elsewhere.

Delivery only ever reads this: an event received from another node reaches the local
subscribers of its channel without any shared-state lookup. It is also the truth a node writes
back into Redis after Redis lost its data (`snapshot`).

On presence channels it also keeps each socket's *view* (the user ids it was told, see
`rosters`): member frames that would repeat a view are not sent to that socket, and `correct`
tells each socket the difference between its view and a roster read from Redis.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping
from typing import Any

from broadcaster.hub.base import DeliveryCounter, Subscriber
from broadcaster.hub.rosters import (
    MemberChange,
    View,
    ViewUpdates,
    corrections,
    intern_view,
    member_change,
)
from broadcaster.hub.users import UserDirectory
from broadcaster.protocol import frames
from broadcaster.protocol.encoding import dump_json
from broadcaster.protocol.errors import PusherError
from broadcaster.protocol.presence import Member, PresenceRoster

FrameEncoder = Callable[[str], bytes]


class LocalChannel:
    """The local side of one channel: subscribers here, who they are (presence), and the
    cluster-wide subscription count last learnt from a join or leave.

    Presence only: `views` maps socket id -> the user ids that socket was told (sockets without
    one, not yet told a roster, get every frame), `common` is the view last handed out (reused
    for equal ones), and `changes` is stamped anew at each join and member frame, so that a
    roster read from Redis can tell whether something newer reached the sockets meanwhile.
    """

    __slots__ = ("changes", "common", "count_sent_at", "roster", "subscribers", "total",
                 "views")

    def __init__(self, presence: bool) -> None:
        self.subscribers: dict[str, Subscriber] = {}
        self.roster: PresenceRoster | None = PresenceRoster() if presence else None
        self.total = 0
        self.count_sent_at: float | None = None
        self.views: dict[str, View] | None = {} if presence else None
        self.common: View = frozenset()
        self.changes = 0


class LocalState:
    """Channels, connections and signed-in users of this node's sockets, per app."""

    def __init__(self, encode: FrameEncoder, delivered: DeliveryCounter) -> None:
        self.encode = encode
        self._delivered = delivered
        self.channels: dict[tuple[str, str], LocalChannel] = {}
        self.connections: dict[str, int] = {}
        self.users = UserDirectory()
        # Stamps of `LocalChannel.changes`: unique across channels and their re-creations.
        self._ticks = itertools.count(1)

    # -- membership ---------------------------------------------------------------------------

    def connected(self, app_id: str, delta: int) -> int:
        """Count a connection in (+1) or out (-1); returns this node's count."""
        count = self.connections.get(app_id, 0) + delta
        if count > 0:
            self.connections[app_id] = count
        else:
            self.connections.pop(app_id, None)
        return max(count, 0)

    def channel(self, app_id: str, channel: str) -> LocalChannel | None:
        return self.channels.get((app_id, channel))

    def add(self, app_id: str, channel: str, subscriber: Subscriber,
            member: Member | None) -> tuple[LocalChannel, bool]:
        """Subscribe locally; returns the channel and whether it is the member's first local
        connection (always False off presence channels)."""
        state = self.channels.get((app_id, channel))
        if state is None:
            state = self.channels[(app_id, channel)] = LocalChannel(member is not None)
        state.subscribers[subscriber.socket_id] = subscriber
        first = False
        if member is not None and state.roster is not None:
            first = state.roster.add(subscriber.socket_id, member)
        return state, first

    def remove(self, app_id: str, channel: str, subscriber: Subscriber,
               member: Member | None) -> tuple[LocalChannel, bool] | None:
        """Unsubscribe locally; None if it was not subscribed, else the channel (dropped when
        empty) and whether this was the member's last local connection."""
        key = (app_id, channel)
        state = self.channels.get(key)
        if state is None or state.subscribers.pop(subscriber.socket_id, None) is None:
            return None
        if state.views is not None:
            state.views.pop(subscriber.socket_id, None)
        last = (member is not None and state.roster is not None
                and state.roster.remove(subscriber.socket_id, member.user_id))
        if not state.subscribers:
            del self.channels[key]
        return state, last

    def told(self, app_id: str, channel: str, socket_id: str, users: Collection[str]) -> None:
        """Record that `socket_id` (subscribed to presence `channel`) was told the roster
        `users`, as its `subscription_succeeded` will say."""
        state = self.channels.get((app_id, channel))
        if state is None or state.views is None or socket_id not in state.subscribers:
            return
        state.changes = next(self._ticks)
        state.common = state.views[socket_id] = intern_view(users, state.common)

    # -- delivery -------------------------------------------------------------------------------

    def deliver(self, app_id: str, channel: str, text: str, except_socket_id: str | None) -> None:
        """Send `text` to the local subscribers of `channel`, encoded once; a member frame only
        to the sockets it is news to (`rosters.told_after`)."""
        state = self.channels.get((app_id, channel))
        if state is None:
            return
        if state.views:
            change = member_change(text)
            if change is not None:
                state.changes = next(self._ticks)
                self._deliver_member(state, text, except_socket_id, ViewUpdates(), change)
                return
        subscribers = state.subscribers
        frame = self.encode(text)
        self._delivered.add(len(subscribers) - (except_socket_id in subscribers), len(frame))
        for socket_id, subscriber in subscribers.items():
            if socket_id != except_socket_id:
                subscriber.send_frame(frame)

    def _deliver_member(self, state: LocalChannel, text: str, except_socket_id: str | None,
                        updates: ViewUpdates, change: MemberChange) -> None:
        views = state.views
        assert views is not None
        frame: bytes | None = None
        sent = 0
        for socket_id, subscriber in state.subscribers.items():
            if socket_id == except_socket_id:
                continue
            view = views.get(socket_id)
            if view is not None:
                new = updates.after(view, change)
                if new is None:
                    continue  # it was told so already
                state.common = views[socket_id] = new
            if frame is None:
                frame = self.encode(text)
            subscriber.send_frame(frame)
            sent += 1
        if frame is not None:
            self._delivered.add(sent, len(frame))

    def correct(self, app_id: str, channel: str, roster: Mapping[str, Any]) -> int:
        """Tell each socket of presence `channel` the difference between its view and
        `roster` (user_id -> user_info, the cluster's roster), to that socket only; returns the
        frames sent. Users connected on this node are never announced removed
        (`rosters.corrections`)."""
        state = self.channels.get((app_id, channel))
        if state is None or state.views is None or state.roster is None:
            return 0
        views, here = state.views, state.roster.members()
        plans: dict[View, tuple[list[bytes], View]] = {}
        encoded: dict[tuple[bool, str], bytes] = {}

        def frame(added: bool, user_id: str) -> bytes:
            key = (added, user_id)
            if key not in encoded:
                text = (frames.member_added(channel, user_id, roster[user_id]) if added
                        else frames.member_removed(channel, user_id))
                encoded[key] = self.encode(text)
            return encoded[key]

        sent = 0
        for socket_id, subscriber in state.subscribers.items():
            view = views.get(socket_id)
            if view is None:
                continue
            if view not in plans:
                added, removed = corrections(view, roster, here)
                out = [frame(False, uid) for uid in removed] + [frame(True, uid) for uid in added]
                plans[view] = (out, intern_view(view.union(added).difference(removed),
                                                state.common) if out else view)
            out, new = plans[view]
            for data in out:
                subscriber.send_frame(data)
                self._delivered.add(1, len(data))
            sent += len(out)
            state.common = views[socket_id] = new
        if sent:
            state.changes = next(self._ticks)
        return sent

    def deliver_to_user(self, app_id: str, user_id: str, text: str,
                        except_socket_id: str | None) -> None:
        connections = self.users.connections(app_id, user_id)
        if connections:
            frame = self.encode(text)
            for connection in connections:
                if connection.socket_id != except_socket_id:
                    connection.send_frame(frame)

    def terminate_user(self, app_id: str, user_id: str, error: PusherError) -> int:
        connections = self.users.connections(app_id, user_id)
        for connection in connections:
            connection.close_with(error)
        return len(connections)

    def tell_watchers(self, app_id: str, user_id: str, name: str,
                      except_socket_id: str | None) -> None:
        watchers = self.users.watchers(app_id, user_id, except_socket_id or "")
        if watchers:
            frame = self.encode(frames.watchlist_events(name, [user_id]))
            for watcher in watchers:
                watcher.send_frame(frame)

    # -- views ----------------------------------------------------------------------------------

    def app_channels(self, app_id: str) -> dict[str, LocalChannel]:
        return {name: state for (aid, name), state in self.channels.items() if aid == app_id}

    def snapshot(self, app_id: str) -> dict[str, Any]:
        """This node's share of the shared state of `app_id`, in the shape `NODE_STATE`
        ('register') reads."""
        channels, presence = [], []
        for name, state in self.app_channels(app_id).items():
            channels.append([name, len(state.subscribers)])
            if state.roster is not None:
                infos = state.roster.members()
                for user_id, count in state.roster.connection_counts().items():
                    presence.append([name, user_id, count, dump_json(infos[user_id])])
        users = [[uid, n] for uid, n in self.users.signed_in(app_id).items()]
        return {"conns": self.connections.get(app_id, 0), "channels": channels,
                "presence": presence, "users": users}
