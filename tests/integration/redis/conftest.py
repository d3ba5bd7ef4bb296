"""Real Redis servers (standalone, Sentinel, Cluster) and buses connected to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from broadcaster.hub.redis_bus import RedisBus
from broadcaster.scaling import ScalingConfig
from tests.support.redis_servers import (
    RedisClusterGroup,
    RedisServer,
    SentinelGroup,
    redis_cluster,
    sentinel_group,
    standalone,
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone Redis of this test's own (it may be stopped and restarted)."""
    with standalone(tmp_path) as server:
        yield server


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelGroup]:
    with sentinel_group(tmp_path) as group:
        yield group


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as group:
        yield group


class Inbox:
    """What a bus delivered, with a bounded wait for more."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [p for t, p in self.messages if topic is None or t == topic]

    async def wait_for(self, check: Callable[[], bool], within: float = 5.0) -> float:
        """Seconds until `check` held; fails the test after `within` s."""
        start = time.monotonic()
        while not check():
            if time.monotonic() - start > within:
                raise AssertionError(f"not delivered within {within}s: {self.messages[-5:]}")
            await asyncio.sleep(0.01)
        return time.monotonic() - start


@asynccontextmanager
async def running_bus(config: ScalingConfig, topics: Sequence[str], inbox: Inbox | None = None,
                      **kwargs: object) -> AsyncIterator[RedisBus]:
    """A started bus, connected (within 10 s), always closed."""
    bus = RedisBus(config, topics, inbox or Inbox(), **kwargs)  # type: ignore[arg-type]
    bus.start()
    try:
        assert await bus.wait_connected(10.0), "bus did not connect"
        yield bus
    finally:
        await bus.close()
