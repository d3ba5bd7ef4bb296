"""Channel membership, presence and publishing: the seam between one node and a cluster."""

from broadcaster.hub.base import ChannelStats, Hub, Subscriber
from broadcaster.hub.memory import MemoryHub

__all__ = ["ChannelStats", "Hub", "MemoryHub", "Subscriber"]
