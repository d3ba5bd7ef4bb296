"""Test clients: a signed-in user of the app's API, and a WebSocket listener on the broadcaster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.processes import Broadcaster


@dataclass
class ApiUser:
    """A registered user calling the app with its bearer token."""

    http: httpx.AsyncClient
    token: str
    id: int
    name: str
    email: str

    def headers(self, socket_id: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if socket_id:
            headers["X-Socket-ID"] = socket_id
        return headers

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.headers(), **kwargs)

    async def post(self, path: str, body: Any = None, socket_id: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={**self.headers(socket_id), **(headers or {})}
        )

    async def delete(self, path: str) -> httpx.Response:
        return await self.http.delete(path, headers=self.headers())

    async def new_conversation(self, **fields: Any) -> dict[str, Any]:
        response = await self.post("/api/conversations", {"title": "Test room", **fields})
        assert response.status_code == 201, response.text
        conversation: dict[str, Any] = response.json()["conversation"]
        return conversation

    async def channel_auth(self, socket_id: str, channel: str) -> httpx.Response:
        """What Laravel Echo's authorizer sends: a form post with the bearer header."""
        return await self.http.post(
            "/broadcasting/auth",
            data={"socket_id": socket_id, "channel_name": channel},
            headers=self.headers(),
        )


async def register(http: httpx.AsyncClient, name: str = "Tester") -> ApiUser:
    """A new user with a unique email."""
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post(
        "/api/register", json={"name": name, "email": email, "password": "correct-horse-1"}
    )
    assert response.status_code == 201, response.text
    # The response also sets a session cookie; drop it so each user is known by its token only.
    http.cookies.clear()
    body = response.json()
    return ApiUser(http, body["token"], body["user"]["id"], name, email)


@dataclass
class Listener:
    """A WebSocket client of the broadcaster that records every event it receives.

    Each recorded frame has its `data` decoded and a `received_at` (`time.perf_counter()`).
    """

    ws: ClientConnection
    socket_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, broadcaster: Broadcaster) -> Listener:
        ws = await connect(broadcaster.ws_url)
        established = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert established["event"] == "pusher:connection_established", established
        listener = cls(ws, json.loads(established["data"])["socket_id"])
        listener._reader = asyncio.create_task(listener._read())
        return listener

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                frame = json.loads(raw)
                frame["received_at"] = time.perf_counter()
                data = frame.get("data")
                if isinstance(data, str):
                    with contextlib.suppress(json.JSONDecodeError):
                        frame["data"] = json.loads(data)
                async with self._arrived:
                    self.events.append(frame)
                    self._arrived.notify_all()

    async def subscribe(self, user: ApiUser, channel: str) -> dict[str, Any]:
        """Authorize through the app, subscribe, and return the broadcaster's answer."""
        auth = await user.channel_auth(self.socket_id, channel)
        assert auth.status_code == 200, auth.text
        await self.ws.send(json.dumps(
            {"event": "pusher:subscribe", "data": {"channel": channel, **auth.json()}}
        ))
        return await self.wait_for(
            lambda e: e.get("channel") == channel and e["event"] in (
                "pusher_internal:subscription_succeeded", "pusher:subscription_error")
        )

    def named(self, event: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event
                and (channel is None or e.get("channel") == channel)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The first recorded event matching `predicate`, waiting up to `timeout` seconds."""
        async def first() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    await self._arrived.wait()

        return await asyncio.wait_for(first(), timeout)

    async def completed(self, message_id: int, timeout: float = 15.0) -> dict[str, Any]:
        """The `message` of the `message.completed` event of reply `message_id`."""
        event = await self.wait_for(
            lambda e: e["event"] == "message.completed"
            and e["data"]["message"]["id"] == message_id, timeout)
        message: dict[str, Any] = event["data"]["message"]
        return message

    def chunks(self, message_id: int) -> list[dict[str, Any]]:
        return [e["data"] for e in self.named("message.chunk")
                if e["data"]["message_id"] == message_id]

    async def close(self) -> None:
        await self.ws.close()
        if self._reader:
            await self._reader
