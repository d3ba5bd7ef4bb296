"""The chat app: a Starlette API streaming Claude's replies through a Pusher-protocol server."""
