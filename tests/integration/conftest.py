"""Fixtures for tests against a real broadcaster process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api_client import ApiClient
from tests.support.processes import Broadcaster


@pytest.fixture
def api(shared_broadcaster: Broadcaster) -> Iterator[ApiClient]:
    client = ApiClient(shared_broadcaster.base_url, shared_broadcaster.app_id,
                       shared_broadcaster.key, shared_broadcaster.secret)
    yield client
    client.close()
