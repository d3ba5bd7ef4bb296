"""Unmodified pusher-js clients on two different nodes of a cluster sharing one Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.scaling.conftest import Nodes, running_nodes, scaling_env
from tests.interop.auth_endpoints import NpmAuthServer, pypi_client
from tests.interop.conftest import JsClients
from tests.support.redis_servers import standalone


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    directory: Path = tmp_path_factory.mktemp("interop-scaling")
    with standalone(directory / "redis") as redis, \
            running_nodes(directory, 2, scaling_env(redis, prefix="interop")) as nodes:
        yield nodes


@pytest.fixture
def on_nodes(two_nodes: Nodes) -> Iterator[tuple[JsClients, JsClients]]:
    first, second = JsClients(two_nodes[0]), JsClients(two_nodes[1])
    yield first, second
    first.stop_all()
    second.stop_all()


@pytest.fixture
def auth(two_nodes: Nodes) -> Iterator[NpmAuthServer]:
    endpoint = NpmAuthServer(two_nodes[0]).start()
    yield endpoint
    endpoint.stop()


def test_presence_and_events_across_nodes_with_pusher_js(
    two_nodes: Nodes, on_nodes: tuple[JsClients, JsClients], auth: NpmAuthServer,
    unique: Callable[[str], str],
) -> None:
    channel = unique("presence-cluster")
    ada = on_nodes[0].connect(auth_endpoint=auth.url(), user=("1", "Ada"))
    bob = on_nodes[1].connect(auth_endpoint=auth.url(), user=("2", "Bob"))
    assert ada.subscribed(channel)["count"] == 1
    start = ada.mark()
    together = bob.subscribed(channel)
    assert together["members"] == {"1": {"id": "1", "name": "Ada"},
                                   "2": {"id": "2", "name": "Bob"}}
    added = ada.wait_event(channel, "pusher:member_added", start)["data"]
    assert added == {"id": "2", "info": {"id": "2", "name": "Bob"}}

    sdk: Any = pypi_client(two_nodes[1])  # published on Bob's node, received on both
    start_ada, start_bob = ada.mark(), bob.mark()
    sdk.trigger(channel, "news", {"n": 1})
    assert ada.wait_event(channel, "news", start_ada)["data"] == {"n": 1}
    assert bob.wait_event(channel, "news", start_bob)["data"] == {"n": 1}

    assert bob.trigger(channel, "client-typing", {"typing": True})
    assert ada.wait_event(channel, "client-typing", start_ada)["data"] == {"typing": True}

    start = ada.mark()
    bob.stop()
    removed = ada.wait_event(channel, "pusher:member_removed", start)["data"]
    assert removed == {"id": "2", "info": {"id": "2", "name": "Bob"}}
    assert ada.members(channel)["count"] == 1
