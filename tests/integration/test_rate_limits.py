"""Rate limits: the HTTP API per app (429 + Retry-After), messages per connection (4301)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.api_client import ApiClient
from tests.support.processes import Broadcaster, free_port
from tests.support.pusher_client import PusherTestClient

CONFIG = """
[[apps]]
id = "limited"
key = "limited-key"
secret = "limited-secret"
api_rate_limit = 2
rate_limiting_enabled = true
rate_limit_max_attempts = 3
rate_limit_decay_seconds = 60

[[apps]]
id = "strict"
key = "strict-key"
secret = "strict-secret"
rate_limiting_enabled = true
rate_limit_max_attempts = 2
rate_limit_terminate = true
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Broadcaster]:
    config = tmp_path / "apps.toml"
    config.write_text(CONFIG)
    # The environment adds a third app with no limits at all (the default).
    running = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                          extra_args=["--config", str(config)]).start()
    yield running
    running.stop()


def _url(server: Broadcaster, key: str) -> str:
    return f"ws://127.0.0.1:{server.port}/app/{key}?protocol=7"


def test_http_api_limit_answers_429_with_retry_after(server: Broadcaster) -> None:
    limited = ApiClient(server.base_url, "limited", "limited-key", "limited-secret")
    free = ApiClient(server.base_url, server.app_id, server.key, server.secret)
    try:
        statuses = [limited.trigger("c", "e", {}).status_code for _ in range(2)]
        refused = limited.trigger("c", "e", {})
        assert statuses == [200, 200]
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "Rate limit exceeded" in refused.json()["error"]
        assert all(free.trigger("c", "e", {}).status_code == 200 for _ in range(6))  # off
        time.sleep(0.6)  # one token back at 2 per second
        assert limited.trigger("c", "e", {}).status_code == 200
        unsigned = limited.http.get("/apps/limited/channels")  # checked before the limit
        assert unsigned.status_code == 401
    finally:
        limited.close()
        free.close()


async def test_messages_over_the_limit_get_4301_and_the_connection_stays(
        server: Broadcaster) -> None:
    async with PusherTestClient(_url(server, "limited-key")) as client:
        for _ in range(3):
            await client.send({"event": "pusher:ping", "data": {}})
            await client.expect("pusher:pong")
        await client.send({"event": "pusher:ping", "data": {}})
        error = await client.expect("pusher:error")
        assert json.loads(error["data"])["code"] == 4301
        await client.send({"event": "pusher:subscribe", "data": {"channel": "still-here"}})
        error = await client.expect("pusher:error")  # still limited, still open
        assert json.loads(error["data"])["code"] == 4301
    async with PusherTestClient(server.ws_url) as unlimited:  # the default: no limit
        for _ in range(10):
            await unlimited.send({"event": "pusher:ping", "data": {}})
            await unlimited.expect("pusher:pong")


async def test_terminate_closes_the_connection_with_4301(server: Broadcaster) -> None:
    async with PusherTestClient(_url(server, "strict-key")) as client:
        for _ in range(2):
            await client.send({"event": "pusher:ping", "data": {}})
            await client.expect("pusher:pong")
        await client.send({"event": "pusher:ping", "data": {}})
        error = await client.expect("pusher:error")
        assert json.loads(error["data"])["code"] == 4301
        assert client.ws is not None
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(client.ws.recv(), 5)
        assert client.ws.close_code == 4301
