"""A Pusher Channels protocol v7 server: WebSocket and HTTP API on one port."""

__version__ = "0.1.0"
