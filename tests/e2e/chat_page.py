"""The chat UI as a person uses it, driven through Playwright: one `ChatPage` per browser tab.

Selectors are the UI's `data-testid` attributes and form labels, so the tests read like the
steps a user takes and do not depend on styling.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@dataclass(frozen=True)
class Person:
    """Someone who signs up: the name and email are unique per test run."""

    name: str
    email: str
    password: str = "correct-horse-battery"


class ChatPage:
    """One signed-in (or signing-in) user in one browser context."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def screenshot(self, name: str) -> Path:
        """Save a full-window screenshot under test-artifacts/e2e/ and return its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def sign_up(self, person: Person) -> None:
        self.page.goto(f"{self.base_url}/register")
        self.page.get_by_label("Name").fill(person.name)
        self.page.get_by_label("Email").fill(person.email)
        self.page.get_by_label("Password").fill(person.password)
        self.page.get_by_role("button", name="Create account").click()
        expect(self.page.get_by_test_id("current-user")).to_have_text(person.name)

    def sign_in(self, person: Person) -> None:
        self.page.goto(f"{self.base_url}/login")
        self.page.get_by_label("Email").fill(person.email)
        self.page.get_by_label("Password").fill(person.password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_test_id("current-user")).to_have_text(person.name)

    def connection(self) -> Locator:
        return self.page.get_by_test_id("connection-status")

    def expect_connected(self, timeout_ms: float = 15_000) -> None:
        expect(self.connection()).to_have_attribute("data-status", "connected", timeout=timeout_ms)

    def create_conversation(self, title: str) -> int:
        """Create a conversation from the sidebar; returns its id (from the URL it opens)."""
        self.page.get_by_test_id("new-conversation").click()
        self.page.get_by_label("Title").fill(title)
        self.page.get_by_role("button", name="Create").click()
        expect(self.page.get_by_test_id("conversation-title")).to_have_text(title)
        match = re.search(r"/conversations/(\d+)$", self.page.url)
        assert match, f"unexpected URL after creating a conversation: {self.page.url}"
        return int(match.group(1))

    def invite(self, email: str) -> None:
        self.page.get_by_label("Invite someone").fill(email)
        self.page.get_by_test_id("invite-submit").click()
        expect(self.page.get_by_role("status").filter(has_text=email)).to_be_visible()

    def open_conversation(self, conversation_id: int) -> None:
        self.page.goto(f"{self.base_url}/conversations/{conversation_id}")

    def open_from_list(self, title: str) -> None:
        item = self.page.get_by_test_id("conversation-item").filter(has_text=title)
        expect(item).to_be_visible(timeout=25_000)
        item.click()
        expect(self.page.get_by_test_id("conversation-title")).to_have_text(title)

    def composer(self) -> Locator:
        return self.page.get_by_test_id("composer")

    def send(self, text: str) -> None:
        """Type `text` and press Enter, as a person sends a message."""
        self.composer().fill(text)
        self.composer().press("Enter")
        expect(self.page.get_by_test_id("outgoing")).to_have_count(0, timeout=10_000)

    def messages(self, role: str | None = None) -> Locator:
        selector = "[data-testid=message]" + (f"[data-role={role}]" if role else "")
        return self.page.locator(selector)

    def last_reply(self) -> Locator:
        return self.messages("assistant").last

    def reply_text(self, message: Locator) -> str:
        content = message.get_by_test_id("message-content")
        return content.inner_text() if content.count() else ""

    def reply_lengths_while_streaming(self, message_id: int, timeout_s: float = 30.0) -> list[int]:
        """Sample the length of a reply's text on every animation frame until it completes.

        Returns the distinct lengths seen, in order, so a caller can tell that the text grew
        over several frames rather than appearing at once.
        """
        script = """
        ([id, timeoutMs]) => new Promise((resolve) => {
          const seen = [];
          const started = performance.now();
          const sample = () => {
            const el = document.querySelector(`[data-testid=message][data-message-id="${id}"]`);
            const text = el?.querySelector("[data-testid=message-content]")?.innerText ?? "";
            if (seen[seen.length - 1] !== text.length) seen.push(text.length);
            const done = el && el.dataset.status !== "streaming";
            if (done || performance.now() - started > timeoutMs) resolve(seen);
            else requestAnimationFrame(sample);
          };
          sample();
        })
        """
        lengths: list[int] = self.page.evaluate(script, [message_id, timeout_s * 1000])
        return lengths

    def watch_prefix(self, message_id: int, expected: str) -> None:
        """Check on every animation frame that the reply's text is a prefix of `expected`.

        A chunk applied twice or out of order shows up as text that is not a prefix; such
        observations are collected in the page and read back with `prefix_violations()`.
        """
        script = """
        ([id, expected]) => {
          window.__prefixViolations = [];
          const check = () => {
            const el = document.querySelector(`[data-testid=message][data-message-id="${id}"]`);
            const text = el?.querySelector("[data-testid=message-content]")?.innerText ?? "";
            if (!expected.startsWith(text)) window.__prefixViolations.push(text);
            if (!el || el.dataset.status === "streaming") requestAnimationFrame(check);
          };
          check();
        }
        """
        self.page.evaluate(script, [message_id, expected])

    def prefix_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("() => window.__prefixViolations ?? []")
        return found

    def wait_for_reply(self, message_id: int, timeout_s: float = 30.0) -> Locator:
        message = self.page.locator(f"[data-testid=message][data-message-id='{message_id}']")
        expect(message).to_have_attribute("data-status", "complete", timeout=timeout_s * 1000)
        return message

    def reply_id_after(self, previous: int, timeout_s: float = 10.0) -> int:
        """The id of the newest assistant message once it is newer than `previous`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            replies = self.messages("assistant")
            if replies.count():
                newest = int(replies.last.get_attribute("data-message-id") or 0)
                if newest > previous:
                    return newest
            self.page.wait_for_timeout(50)
        raise AssertionError(f"no assistant message newer than {previous} appeared")

    def member(self, user_name: str) -> Locator:
        return self.page.get_by_test_id("member").filter(has_text=user_name)

    def typing_indicator(self) -> Locator:
        return self.page.get_by_test_id("typing-indicator")
