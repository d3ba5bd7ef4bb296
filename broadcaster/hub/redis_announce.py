"""What a node's share leaving or coming back means for clients and webhooks.

When a node's share of the shared state is removed (it died, or it is closing) or written back
(it had been taken for dead), the script that did it says which counters crossed zero; these
functions turn that into the frames and lifecycle events that the sockets' own leaving or
joining would have caused, sent once, by the node that ran the script.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from broadcaster.hub.redis_state import Dropped, Registered, SharedState
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


async def announce_changes(hub: RedisHub, app: App, registered: Registered,
                           settle: float) -> None:
    """After an outage: report the `member_added` / `member_removed` webhooks held back for
    members who joined or left this node meanwhile, once per cluster (only the node whose share
    changed sees the difference). The sockets are told by `RosterSync`, on every node.

    `settle` s first, then each change is checked against Redis, so a member who came back or
    left again meanwhile (reported by then through a script) is not reported twice. Nothing
    when Redis no longer held the share (it lost its data, or the node was cleaned up as dead):
    what the webhooks were told is then unknown.
    """
    if not registered.held or not (registered.gone or registered.added):
        return
    await asyncio.sleep(settle)
    channels = {channel for channel, _ in (*registered.gone, *registered.added)}
    present: dict[str, set[str]] = {}
    for channel in channels:
        members = await hub.shared(partial(SharedState.members, app_id=app.id, channel=channel))
        if members is None:
            return  # Redis is away again
        present[channel] = set(members)
    for channel, user_id in registered.gone:
        if user_id not in present[channel]:
            hub.observer(app, {"name": "member_removed", "channel": channel, "user_id": user_id})
    for channel, user_id in registered.added:
        state = hub.local.channel(app.id, channel)
        if user_id in present[channel] and state is not None and state.roster is not None \
                and state.roster.has_user(user_id):
            hub.observer(app, {"name": "member_added", "channel": channel, "user_id": user_id})
