"""A minimal Pusher protocol client over a real WebSocket, for integration tests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


def sign_channel(key: str, secret: str, socket_id: str, channel: str,
                 channel_data: str | None = None) -> str:
    """What an app's auth endpoint returns; written out here so tests do not reuse server code."""
    message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{key}:{digest}"


class PusherTestClient:
    """Connects, remembers its socket id, and reads events one by one with a timeout."""

    def __init__(self, url: str, *, origin: str | None = None) -> None:
        self.url = url
        self.origin = origin
        self.ws: ClientConnection | None = None
        self.socket_id = ""

    async def __aenter__(self) -> PusherTestClient:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def open(self, expect_established: bool = True) -> dict[str, Any]:
        headers = {"Origin": self.origin} if self.origin else None
        self.ws = await connect(self.url, compression=None, additional_headers=headers,
                                open_timeout=5)
        first = await self.next_event()
        if expect_established:
            assert first["event"] == "pusher:connection_established", first
            self.socket_id = json.loads(first["data"])["socket_id"]
        return first

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def send(self, message: dict[str, Any] | str) -> None:
        assert self.ws is not None
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.ws is not None
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        event: dict[str, Any] = json.loads(raw)
        return event

    async def expect(self, event_name: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next event, which must be `event_name`."""
        event = await self.next_event(timeout)
        assert event["event"] == event_name, event
        return event

    async def expect_silence(self, seconds: float = 0.3) -> None:
        """Fail if any event arrives within `seconds`."""
        assert self.ws is not None
        try:
            raw = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event: {raw!r}")

    async def subscribe(self, channel: str, *, key: str = "", secret: str = "",
                        channel_data: str | None = None, auth: str | None = None,
                        expect_ok: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"channel": channel}
        if auth is None and secret:
            auth = sign_channel(key, secret, self.socket_id, channel, channel_data)
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        await self.send({"event": "pusher:subscribe", "data": data})
        if not expect_ok:
            return await self.next_event()
        return await self.expect("pusher_internal:subscription_succeeded")
