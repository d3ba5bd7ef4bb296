"""Fixtures for the browser tests: the built UI, a headless Chromium, and the whole stack.

The stack is real: a broadcaster process, the chat app process serving the built UI, and the
scripted stand-in for Claude's streaming API. Chromium is Debian's package driven by Playwright
through `executable_path` (never a downloaded browser).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.e2e.chat_page import ChatPage, Person
from tests.support.app_server import AppServer, running_app
from tests.support.fake_claude import FakeClaude
from tests.support.processes import REPO_ROOT, Broadcaster

UI_DIR = REPO_ROOT / "echo_client_example"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 820}


def _newest_source_mtime() -> float:
    sources = [UI_DIR / "index.html", UI_DIR / "package-lock.json", UI_DIR / "vite.config.js"]
    sources += [p for p in (UI_DIR / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="session")
def built_ui() -> Path:
    """`echo_client_example/dist`, rebuilt with npm when it is missing or older than its sources."""
    dist = UI_DIR / "dist"
    index = dist / "index.html"
    if index.is_file() and index.stat().st_mtime >= _newest_source_mtime():
        return dist
    npm = shutil.which("npm")
    assert npm, "npm is needed to build the UI (Node 20 with npm)"
    if not (UI_DIR / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=UI_DIR, check=True, timeout=600)
    subprocess.run([npm, "run", "build"], cwd=UI_DIR, check=True, timeout=300)
    assert index.is_file(), "the UI build produced no index.html"
    return dist


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium; install it with `apt-get install -y chromium` (make test does)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class Stack:
    """The running broadcaster, chat app and scripted model of one test module."""

    broadcaster: Broadcaster
    app: AppServer
    claude: FakeClaude

    @property
    def base_url(self) -> str:
        return self.app.base_url


@pytest.fixture(scope="module")
def fake_claude() -> Iterator[FakeClaude]:
    with FakeClaude() as claude:
        yield claude


@pytest.fixture(scope="module")
def stack(
    built_ui: Path,
    shared_broadcaster: Broadcaster,
    fake_claude: FakeClaude,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Broadcaster + app (SQLite, serving the built UI) + scripted Claude for one test module."""
    tmp = tmp_path_factory.mktemp("e2e-app")
    with running_app(
        tmp,
        broadcaster=shared_broadcaster,
        claude_url=fake_claude.base_url,
        extra_env={"APP_UI_DIST": str(built_ui)},
    ) as app:
        yield Stack(shared_broadcaster, app, fake_claude)


@pytest.fixture
def people() -> Callable[[str], Person]:
    """Make a person with a unique email, e.g. `people("Ada")`."""
    run = uuid.uuid4().hex[:8]
    counter = itertools.count(1)

    def make(name: str) -> Person:
        return Person(name=name, email=f"{name.lower()}.{run}.{next(counter)}@example.com")

    return make


@pytest.fixture
def open_page(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], ChatPage]]:
    """Open a fresh browser context (its own storage, like another person's browser) at a URL.

    Page errors (uncaught exceptions in the UI) fail the test.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(base_url: str) -> ChatPage:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return ChatPage(page, base_url)

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page during {request.node.name}: {errors}"
