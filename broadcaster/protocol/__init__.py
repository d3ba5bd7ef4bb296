"""The Pusher protocol rules, pure and stdlib-only: no asyncio, no sockets, no clock reads."""
