"""What each socket of a presence channel has been told, and what to tell it next: pure rules,
no sockets and no I/O.

A socket's *view* is the set of user ids it believes present: the roster of its
`subscription_succeeded`, then every `member_added` / `member_removed` it was sent. The rules:

- A member frame is news to a socket only if it changes its view (`told_after`): a
  `member_added` of a user it has, or a `member_removed` of a user it has not, is dropped for
  that socket. Hence a user is never announced twice to one socket, whichever way the
  announcements came (the bus, a node's own sockets while Redis was away, a correction).
- A correction (`corrections`) turns a view into the cluster's roster: the users missing from
  the view are added, the users the roster no longer has are removed, except users with a
  connection on this very node (they are present whatever a roster read a moment ago says).

Views are frozensets shared between sockets that were told the same thing (`ViewUpdates`), so a
channel whose sockets agree holds one set, not one per socket.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

View = frozenset[str]

_ADDED = "pusher_internal:member_added"
_REMOVED = "pusher_internal:member_removed"
# Every member frame text starts so (`frames.event_frame`); anything else is not parsed at all.
_PREFIX = '{"event":"pusher_internal:member_'


@dataclass(frozen=True, slots=True)
class MemberChange:
    """What one member frame announces: `user_id` joined (`added`) or left."""

    added: bool
    user_id: str


def member_change(text: str) -> MemberChange | None:
    """The change announced by the frame `text`; None when it is not a well-formed member frame
    (those are delivered as they are, unfiltered)."""
    if not text.startswith(_PREFIX):
        return None
    try:
        frame = json.loads(text)
        data = json.loads(frame["data"])
        user_id = data["user_id"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(user_id, str):
        return None
    event = frame.get("event")
    if event == _ADDED:
        return MemberChange(True, user_id)
    if event == _REMOVED:
        return MemberChange(False, user_id)
    return None


def told_after(view: View, change: MemberChange) -> View | None:
    """The view once `change` is told; None when telling it would repeat what `view` says
    (the frame must then not be sent to that socket)."""
    if change.added:
        return None if change.user_id in view else view | {change.user_id}
    return view - {change.user_id} if change.user_id in view else None


def corrections(view: View, roster: Collection[str],
                here: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """(users to announce added, users to announce removed) that make `view` equal `roster`.

    Users in `here` (connected on this node) are never removed: the node's own share is in
    Redis once it registered, so their absence means the roster was read too early.
    """
    added = sorted(uid for uid in roster if uid not in view)
    removed = sorted(uid for uid in view if uid not in roster and uid not in here)
    return added, removed


class ViewUpdates:
    """Applies one change to many sockets' views, sharing the resulting sets: sockets whose
    views were equal get the same new set object. One instance per change."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: dict[View, View | None] = {}

    def after(self, view: View, change: MemberChange) -> View | None:
        """`told_after(view, change)`, computed once per distinct view."""
        if view in self._done:
            return self._done[view]
        new = self._done[view] = told_after(view, change)
        return new


def intern_view(users: Collection[str], common: View) -> View:
    """`users` as a view: `common` itself (the view most sockets of the channel share) when
    equal, so that agreeing sockets share one set."""
    view = frozenset(users)
    return common if view == common else view
