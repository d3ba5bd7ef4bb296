"""Signed-in connections and watchlists of one node, for the in-process hub."""

from __future__ import annotations

from broadcaster.hub.base import Subscriber
from broadcaster.protocol.users import SignedInUser

_Key = tuple[str, str]  # (app id, user id)


class UserDirectory:
    """Which sockets each user is signed in on, and which sockets watch each user.

    A user is online while they have at least one signed-in connection; only the first
    connection and the last disconnection change that.
    """

    __slots__ = ("_connections", "_watchers")

    def __init__(self) -> None:
        self._connections: dict[_Key, dict[str, Subscriber]] = {}
        self._watchers: dict[_Key, dict[str, Subscriber]] = {}

    def add(self, app_id: str, subscriber: Subscriber, user: SignedInUser) -> bool:
        """Record the sign-in; True when it is the user's first connection."""
        key = (app_id, user.id)
        sockets = self._connections.setdefault(key, {})
        first = not sockets
        sockets[subscriber.socket_id] = subscriber
        for watched in user.watchlist:
            self._watchers.setdefault((app_id, watched), {})[subscriber.socket_id] = subscriber
        return first

    def remove(self, app_id: str, subscriber: Subscriber, user: SignedInUser) -> bool:
        """Forget the sign-in; True when it was the user's last connection."""
        for watched in user.watchlist:
            watchers = self._watchers.get((app_id, watched))
            if watchers is not None:
                watchers.pop(subscriber.socket_id, None)
                if not watchers:
                    del self._watchers[(app_id, watched)]
        key = (app_id, user.id)
        sockets = self._connections.get(key)
        if sockets is None or sockets.pop(subscriber.socket_id, None) is None:
            return False
        if sockets:
            return False
        del self._connections[key]
        return True

    def online(self, app_id: str, user_ids: tuple[str, ...]) -> list[str]:
        """Those of `user_ids` with at least one signed-in connection."""
        return [uid for uid in user_ids if (app_id, uid) in self._connections]

    def signed_in(self, app_id: str) -> dict[str, int]:
        """user_id -> signed-in connections, for every user of `app_id` with some."""
        return {uid: len(sockets) for (aid, uid), sockets in self._connections.items()
                if aid == app_id}

    def connections(self, app_id: str, user_id: str) -> list[Subscriber]:
        return list(self._connections.get((app_id, user_id), {}).values())

    def watchers(self, app_id: str, user_id: str, except_socket_id: str) -> list[Subscriber]:
        """Sockets watching `user_id`, other than `except_socket_id`."""
        watchers = self._watchers.get((app_id, user_id), {})
        return [s for sid, s in watchers.items() if sid != except_socket_id]
