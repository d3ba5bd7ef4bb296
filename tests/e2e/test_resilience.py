"""The broadcaster dies mid-reply, or cannot be reached at all: the pages still end up right."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.chat_page import ChatPage, Person
from tests.e2e.conftest import Stack
from tests.support.app_server import running_app
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster, free_port

REPLY = " ".join(
    f"Sentence number {n} of a long answer keeps the reply streaming for a while."
    for n in range(1, 31)
)


@pytest.fixture
def own_stack(
    built_ui: Path, broadcaster: Broadcaster, fake_claude: FakeClaude, tmp_path: Path
) -> Iterator[Stack]:
    """A stack whose broadcaster this test alone may kill and restart."""
    with running_app(
        tmp_path, broadcaster=broadcaster, claude_url=fake_claude.base_url,
        extra_env={"APP_UI_DIST": str(built_ui)},
    ) as app:
        yield Stack(broadcaster, app, fake_claude)


def test_both_pages_recover_the_full_reply_when_the_broadcaster_restarts_mid_reply(
    own_stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person]
) -> None:
    # About 2,200 characters in 4-character deltas every 45 ms: some 25 seconds of streaming, so
    # the reply is surely still running when pusher-js has reconnected after its back-off.
    own_stack.claude.script(Script(reply=REPLY, chunk_size=4, delay=0.045), match="long story")
    ada, ben = people("Ada"), people("Ben")
    a = open_page(own_stack.base_url)
    a.sign_up(ada)
    b = open_page(own_stack.base_url)
    b.sign_up(ben)
    a.create_conversation("Outage drill")
    a.invite(ben.email)
    b.page.reload()
    b.open_from_list("Outage drill")
    for page in (a, b):
        page.expect_connected()

    a.send("Tell me a long story")
    reply_id = a.reply_id_after(0)
    for page in (a, b):
        page.watch_prefix(reply_id, REPLY)
    content = a.page.locator(f"[data-testid=message][data-message-id='{reply_id}'] "
                             "[data-testid=message-content]")
    expect(content).to_contain_text("Sentence number 3 ")

    own_stack.broadcaster.kill()
    for page in (a, b):
        expect(page.connection()).not_to_have_attribute("data-status", "connected")
    a.screenshot("restart-while-down")
    own_stack.broadcaster.start()

    for page in (a, b):
        page.expect_connected(timeout_ms=30_000)
    # Reconnected mid-reply: what follows arrives as live chunks after a REST catch-up.
    reply_a = a.page.locator(f"[data-testid=message][data-message-id='{reply_id}']")
    assert reply_a.get_attribute("data-status") == "streaming"
    for page in (a, b):
        reply = page.wait_for_reply(reply_id, timeout_s=30)
        assert page.reply_text(reply) == REPLY
        assert page.prefix_violations() == []
    a.screenshot("restart-recovered-owner")
    b.screenshot("restart-recovered-member")


def test_the_page_falls_back_to_polling_when_websockets_cannot_connect(
    built_ui: Path, fake_claude: FakeClaude, open_page: Callable[[str], ChatPage],
    people: Callable[[str], Person], tmp_path: Path,
) -> None:
    fake_claude.script(Script(reply="Answered while the socket was down.", chunk_size=3,
                              delay=0.02), match="anyone there")
    # The app points browsers at a port nothing listens on.
    with running_app(
        tmp_path, claude_url=fake_claude.base_url,
        extra_env={"APP_UI_DIST": str(built_ui), "REVERB_PORT": str(free_port())},
    ) as app:
        a = open_page(app.base_url)
        a.sign_up(people("Pia"))
        expect(a.connection()).not_to_have_attribute("data-status", "connected")
        a.create_conversation("Offline room")
        expect(a.page.get_by_test_id("polling-banner")).to_be_visible(timeout=15_000)
        a.send("Is anyone there?")
        reply = a.wait_for_reply(a.reply_id_after(0), timeout_s=20)
        assert a.reply_text(reply) == "Answered while the socket was down."
        a.screenshot("polling-fallback")
