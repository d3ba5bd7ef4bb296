"""Which pub/sub topic carries a channel's messages between nodes.

A deployment uses a fixed set of `partitions` topics and every node listens to all of them, so a
publish costs one Redis command whatever the number of nodes or subscribers. A channel always
maps to the same topic, which keeps its messages in publish order. On a Redis Cluster each
topic carries a hash tag chosen so the topics spread evenly over the 16384 slots, hence over
the shards: one app's channels spread across shards, and throughput grows with them.
"""

from __future__ import annotations

import zlib

from redis.crc import key_slot

SLOTS = 16384
_MAX_TAG_TRIES = 1_000_000


def _tag_for(partition: int, partitions: int) -> str:
    """A short hash tag whose slot lies in this partition's equal share of the slot range."""
    low = partition * SLOTS // partitions
    high = (partition + 1) * SLOTS // partitions
    for attempt in range(_MAX_TAG_TRIES):
        tag = f"{partition}.{attempt}"
        if low <= key_slot(f"{{{tag}}}".encode()) < high:
            return tag
    raise RuntimeError(f"no hash tag found for partition {partition}")  # pragma: no cover


class Topics:
    """The topic names of one deployment (`prefix`) split into `partitions` topics."""

    def __init__(self, prefix: str, partitions: int = 1) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.prefix = prefix
        if partitions == 1:
            self.names: tuple[str, ...] = (f"{prefix}:bus",)
        else:
            self.names = tuple(f"{prefix}:bus:{{{_tag_for(i, partitions)}}}"
                               for i in range(partitions))

    def for_channel(self, app_id: str, channel: str) -> str:
        """The topic of `channel` of app `app_id`: stable across processes and machines."""
        if len(self.names) == 1:
            return self.names[0]
        digest = zlib.crc32(f"{app_id}\x00{channel}".encode())
        return self.names[digest % len(self.names)]

    @staticmethod
    def slot(topic: str) -> int:
        """The Redis Cluster slot of `topic`."""
        return int(key_slot(topic.encode()))
