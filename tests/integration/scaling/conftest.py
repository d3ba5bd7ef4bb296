"""A real Redis and several real broadcaster processes scaled out over it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.processes import Broadcaster, free_port
from tests.support.pusher_client import PusherTestClient
from tests.support.redis_servers import RedisServer, standalone
from tests.support.webhook_receiver import WebhookReceiver

WEBHOOK_EVENTS = ["channel_occupied", "channel_vacated", "member_added", "member_removed",
                  "cache_miss", "subscription_count"]
_prefixes = itertools.count()


class Nodes:
    """Broadcaster processes of one deployment, all on the same Redis and app."""

    def __init__(self, servers: list[Broadcaster]) -> None:
        self.servers = servers

    def __getitem__(self, index: int) -> Broadcaster:
        return self.servers[index]

    def __len__(self) -> int:
        return len(self.servers)

    def api(self, index: int) -> ApiClient:
        server = self.servers[index]
        return ApiClient(server.base_url, server.app_id, server.key, server.secret)

    def client(self, index: int) -> PusherTestClient:
        return PusherTestClient(self.servers[index].ws_url)

    def get(self, index: int, resource: str, **params: str) -> dict[str, Any]:
        api = self.api(index)
        try:
            response = api.request("GET", resource, params=params or None)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer
        finally:
            api.close()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def scaling_env(redis: RedisServer | None = None, prefix: str | None = None,
                **extra: str) -> dict[str, str]:
    env = {"REVERB_SCALING_ENABLED": "true",
           "REVERB_SCALING_PREFIX": prefix or f"t{next(_prefixes)}",
           "REVERB_APP_SUBSCRIPTION_COUNT": "true"}
    if redis is not None:
        env |= {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis.port)}
    return env | extra


@contextmanager
def running_nodes(directory: Path, count: int, env: dict[str, str],
                  args: list[str] | None = None) -> Iterator[Nodes]:
    """`count` broadcaster nodes with `env`, stopped (SIGTERM) at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    servers = [Broadcaster(port=free_port(), log_path=directory / f"node{i}.log",
                           extra_env=dict(env), extra_args=list(args or []))
               for i in range(count)]
    nodes = Nodes(servers)
    try:
        for server in servers:
            server.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, for tests that stop or restart it."""
    with standalone(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A webhook receiver of the test's own."""
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with standalone(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, shared_redis: RedisServer,
          receiver: WebhookReceiver) -> Iterator[Nodes]:
    """Three nodes on one Redis, webhooks to `receiver`, subscription counts on."""
    hooks = json.dumps([{"url": receiver.url, "event_types": WEBHOOK_EVENTS}])
    env = scaling_env(shared_redis, REVERB_APP_WEBHOOKS=hooks)
    with running_nodes(tmp_path_factory.mktemp("nodes"), 3, env) as started:
        yield started
