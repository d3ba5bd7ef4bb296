"""When to ping an idle connection and when to give up on it."""

from __future__ import annotations

import enum


class Liveness(enum.Enum):
    ALIVE = "alive"
    PING = "ping"
    DEAD = "dead"


def check_liveness(now: float, last_seen: float, pinged: bool, ping_interval: float,
                   pong_timeout: float) -> Liveness:
    """What to do with a connection last heard from at `last_seen`.

    Any frame from the client counts as a sign of life. Silent for `ping_interval` -> PING (once);
    still silent `pong_timeout` after that -> DEAD (close with 4201).
    """
    idle = now - last_seen
    if idle < ping_interval:
        return Liveness.ALIVE
    if not pinged:
        return Liveness.PING
    if idle >= ping_interval + pong_timeout:
        return Liveness.DEAD
    return Liveness.ALIVE
