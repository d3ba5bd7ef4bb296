"""When to announce a channel's subscription count (`pusher_internal:subscription_count`).

Pusher sends the count on every subscribe and unsubscribe while a channel has at most 100
subscribers, and at most once every 5 seconds above that, so a busy channel does not turn every
join into a broadcast to thousands of sockets.
"""

from __future__ import annotations

THROTTLE_ABOVE = 100
THROTTLE_INTERVAL = 5.0


def count_update_due(count: int, last_sent_at: float | None, now: float) -> bool:
    """Whether a changed count of `count` subscribers may be sent now.

    When it may not, the caller keeps it pending and asks again later (the hub's housekeeping);
    the latest count is sent then.
    """
    if count <= THROTTLE_ABOVE or last_sent_at is None:
        return True
    return now - last_sent_at >= THROTTLE_INTERVAL
