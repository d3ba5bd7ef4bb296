"""What a node's share leaving or coming back means for clients and webhooks.

When a node's share of the shared state is removed (it died, or it is closing) or written back
(it had been taken for dead), the script that did it says which counters crossed zero; these
functions turn that into the frames and lifecycle events that the sockets' own leaving or
joining would have caused, sent once, by the node that ran the script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broadcaster.hub.redis_state import Dropped, Registered
from broadcaster.protocol import frames
from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import ChannelKind, channel_kind

if TYPE_CHECKING:
    from broadcaster.hub.redis_hub import RedisHub


def announce_dropped(hub: RedisHub, app: App, dropped: Dropped) -> None:
    """As if the node's sockets had all left: member_removed, vacated, offline, new counts."""
    for channel, user_id in dropped.removed:
        hub.event(app, channel, frames.member_removed(channel, user_id), None)
        hub.observer(app, {"name": "member_removed", "channel": channel, "user_id": user_id})
    for channel in dropped.vacated:
        hub.observer(app, {"name": "channel_vacated", "channel": channel})
    for user_id in dropped.offline:
        hub.watch(app, user_id, "offline", None)
    if app.subscription_count:
        for channel, total in dropped.counts.items():
            if channel_kind(channel) is not ChannelKind.PRESENCE:
                hub.send_count(app, channel, total)


def announce_registered(hub: RedisHub, app: App, registered: Registered) -> None:
    """As if the node's sockets had joined again: occupied, member_added (with the user_info
    this node holds), online."""
    for channel in registered.occupied:
        hub.observer(app, {"name": "channel_occupied", "channel": channel})
    for channel, user_id in registered.added:
        state = hub.local.channel(app.id, channel)
        roster = {} if state is None or state.roster is None else state.roster.members()
        hub.event(app, channel, frames.member_added(channel, user_id, roster.get(user_id)), None)
        hub.observer(app, {"name": "member_added", "channel": channel, "user_id": user_id})
    for user_id in registered.online:
        hub.watch(app, user_id, "online", None)
