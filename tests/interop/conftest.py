"""Fixtures for the interop tests: Node prerequisites, auth endpoints, and JS clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.interop.auth_endpoints import NpmAuthServer, PypiAuthServer, pypi_client
from tests.interop.clients import JsClient, Library
from tests.interop.node_process import missing_node_setup
from tests.support.processes import Broadcaster


@pytest.fixture(autouse=True, scope="session")
def node_setup() -> None:
    """Fail (never skip) every interop test when Node or the npm packages are missing."""
    problem = missing_node_setup()
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="module")
def npm_auth(shared_broadcaster: Broadcaster) -> Iterator[NpmAuthServer]:
    """An auth endpoint signing with the npm `pusher` SDK for the module's broadcaster."""
    endpoint = NpmAuthServer(shared_broadcaster).start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def pypi_auth(shared_broadcaster: Broadcaster) -> Iterator[PypiAuthServer]:
    """An auth endpoint signing with the PyPI `pusher` SDK for the module's broadcaster."""
    endpoint = PypiAuthServer(shared_broadcaster).start()
    yield endpoint
    endpoint.stop()


class JsClients:
    """Starts JS clients against one broadcaster and stops them all when the test ends."""

    def __init__(self, server: Broadcaster) -> None:
        self.server = server
        self._started: list[JsClient] = []

    def connect(
        self,
        library: Library = "pusher-js",
        auth_endpoint: str | None = None,
        user: tuple[str, str] | None = None,
        user_auth_endpoint: str | None = None,
        watchlist: list[str] | None = None,
        **options: Any,
    ) -> JsClient:
        """Start a client and wait until it is connected."""
        client = JsClient(self.server, library, auth_endpoint, user, user_auth_endpoint,
                          watchlist, **options)
        self._started.append(client)
        client.start().wait_connected()
        return client

    def stop_all(self) -> None:
        for client in self._started:
            client.stop()


@pytest.fixture
def js_clients(shared_broadcaster: Broadcaster) -> Iterator[JsClients]:
    clients = JsClients(shared_broadcaster)
    yield clients
    clients.stop_all()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make channel names no other test uses: unique("private-chat") -> "private-chat-1a2b3c4d"."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def pypi(shared_broadcaster: Broadcaster) -> Any:
    """The PyPI `pusher` SDK client for the module's broadcaster (the SDK is untyped)."""
    return pypi_client(shared_broadcaster)
