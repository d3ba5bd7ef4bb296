"""What a node does with each bus message: decode it and apply it to its own sockets.

Every node applies every message, its own included (see `RedisHub`); a message of a kind this
version does not know (sent by a newer node during a rolling upgrade) is skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from broadcaster.hub import envelope as wire
from broadcaster.hub.envelope import Envelope, Kind
from broadcaster.hub.local_state import LocalState
from broadcaster.protocol.errors import UserTerminated

log = logging.getLogger("broadcaster.redis")


class Inbox:
    """Applies bus messages to `local`; `on_resync(app_id)` is called when another node wrote
    its share of an app again (`Kind.RESYNC`)."""

    def __init__(self, local: LocalState, node_id: str,
                 on_resync: Callable[[str], None]) -> None:
        self.local, self.node_id, self._on_resync = local, node_id, on_resync
        self._told_unknown = False  # the first message of an unknown kind was logged

    def received(self, topic: str, payload: bytes) -> None:
        """The bus's message handler. Raises `EnvelopeError` for bytes that are no envelope."""
        try:
            message = wire.decode(payload)
        except wire.UnknownKind as exc:
            if not self._told_unknown:
                self._told_unknown = True
                log.warning("skipping bus messages of a kind this version does not know",
                            extra={"error": str(exc)})
            return
        self.apply(message)

    def apply(self, message: Envelope) -> None:
        """Deliver `message` to this node's sockets."""
        kind, app_id, target, local = message.kind, message.app_id, message.channel, self.local
        if kind is Kind.EVENT:
            local.deliver(app_id, target, message.text, message.except_socket_id)
        elif kind is Kind.ELSEWHERE:
            if message.origin != self.node_id:
                local.deliver(app_id, target, message.text, message.except_socket_id)
        elif kind is Kind.USER:
            local.deliver_to_user(app_id, target, message.text, message.except_socket_id)
        elif kind is Kind.TERMINATE:
            data = json.loads(message.text)
            local.terminate_user(app_id, target,
                                 UserTerminated(str(data["message"]), code=int(data["code"])))
        elif kind is Kind.WATCH:
            local.tell_watchers(app_id, target, message.text, message.except_socket_id)
        elif kind is Kind.RESYNC and message.origin != self.node_id:
            self._on_resync(app_id)
