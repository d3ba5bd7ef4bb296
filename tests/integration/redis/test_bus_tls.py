"""`rediss://` with a password: the bus and the heartbeat client over TLS with AUTH."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.hub.node_registry import NodeRegistry
from broadcaster.hub.redis_bus import RedisBus
from broadcaster.hub.redis_clients import command_client
from broadcaster.hub.topics import Topics
from broadcaster.scaling import load_scaling
from tests.integration.redis.conftest import Inbox, running_bus
from tests.support.redis_servers import tls_standalone


async def test_tls_and_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tls_standalone(tmp_path, password="s3cret@pw") as server:
        assert server.tls_ca is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(server.tls_ca))  # trust the test CA
        config = load_scaling({"REVERB_SCALING_ENABLED": "true",
                               "REDIS_URL": f"rediss://:s3cret%40pw@127.0.0.1:{server.port}",
                               "REDIS_TIMEOUT": "2"})
        assert config is not None and config.tls
        topics = Topics(config.prefix).names
        inbox = Inbox()
        async with running_bus(config, topics) as a, running_bus(config, topics, inbox):
            for i in range(100):
                a.publish(topics[0], b"%d" % i)
            await inbox.wait_for(lambda: len(inbox.messages) == 100)
            assert inbox.payloads() == [b"%d" % i for i in range(100)]
        client = command_client(config)
        try:
            registry = NodeRegistry(config, client, "tls-node")
            await registry.beat()
            assert await registry.live_nodes() == ["tls-node"]
        finally:
            await client.aclose()


async def test_a_wrong_password_never_connects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with tls_standalone(tmp_path, password="right") as server:
        assert server.tls_ca is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(server.tls_ca))
        config = load_scaling({"REVERB_SCALING_ENABLED": "true", "REDIS_TIMEOUT": "1",
                               "REDIS_URL": f"rediss://:wrong@127.0.0.1:{server.port}"})
        assert config is not None
        bus = RedisBus(config, Topics(config.prefix).names, Inbox())
        bus.start()
        try:
            assert not await bus.wait_connected(1.5)
        finally:
            await bus.close()
        errors = [str(getattr(r, "error", "")) for r in caplog.records]
        assert any("WRONGPASS" in error for error in errors), errors
