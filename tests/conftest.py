"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Broadcaster, running_broadcaster


@pytest.fixture
def broadcaster(tmp_path: Path) -> Iterator[Broadcaster]:
    """A real broadcaster process on a free port with one app (id 100001, key app-key)."""
    with running_broadcaster(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def shared_broadcaster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broadcaster]:
    """One broadcaster for a whole test module (tests must use distinct channel names)."""
    with running_broadcaster(tmp_path_factory.mktemp("broadcaster")) as server:
        yield server
