"""Who may open a conversation, and Markdown that renders without letting HTML in."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.e2e.chat_page import ChatPage, Person
from tests.e2e.conftest import Stack
from tests.support.fake_claude import Script

MARKDOWN_REPLY = (
    "Here is **bold text**, some `inline code` and a [bad link](javascript:alert(1)).\n\n"
    '<img src="x" onerror="window.__injected = true">\n\n'
    "- first point\n- second point\n\n"
    "![the conversation](http://127.0.0.1:9/leak?text=secret)"
)


def test_a_third_person_cannot_open_the_conversation(
    stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person]
) -> None:
    stack.claude.script(Script(reply="Noted."), match="secret launch plan")
    owner, outsider = people("Olga"), people("Carl")
    a = open_page(stack.base_url)
    a.sign_up(owner)
    conversation_id = a.create_conversation("Private planning")
    a.send("Our secret launch plan is ready")
    a.wait_for_reply(a.reply_id_after(0))

    c = open_page(stack.base_url)
    c.sign_up(outsider)
    expect(c.page.get_by_test_id("conversation-item")).to_have_count(0)
    c.open_conversation(conversation_id)

    expect(c.page.get_by_test_id("room-error")).to_contain_text(
        "You don't have access to this conversation"
    )
    expect(c.page.get_by_test_id("message")).to_have_count(0)
    assert "secret launch plan" not in c.page.content()
    c.screenshot("outsider-refused")


def test_markdown_is_rendered_and_html_is_shown_as_text(
    stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person]
) -> None:
    stack.claude.script(Script(reply=MARKDOWN_REPLY, chunk_size=5), match="format it")
    a = open_page(stack.base_url)
    a.sign_up(people("Mara"))
    a.create_conversation("Formatting")
    a.send("Please format it <b>nicely</b> <script>window.__injected = true</script>")
    reply = a.wait_for_reply(a.reply_id_after(0)).get_by_test_id("message-content")

    expect(reply.locator("strong")).to_have_text("bold text")
    expect(reply.locator("code")).to_have_text("inline code")
    expect(reply.locator("li")).to_have_count(2)
    expect(reply.locator("a[href^='javascript']")).to_have_count(0)
    expect(a.page.locator("[data-testid=messages] img")).to_have_count(0)
    # A Markdown image is never fetched: it becomes a link to follow or not.
    image_link = reply.locator("a[data-image-link]")
    expect(image_link).to_have_text("the conversation")
    expect(image_link).to_have_attribute("href", "http://127.0.0.1:9/leak?text=secret")
    expect(a.page.locator("[data-testid=messages] script")).to_have_count(0)
    expect(reply).to_contain_text('<img src="x" onerror="window.__injected = true">')
    mine = a.messages("user").last.get_by_test_id("message-content")
    expect(mine).to_contain_text("<b>nicely</b>")
    expect(mine.locator("b")).to_have_count(0)
    assert a.page.evaluate("() => window.__injected === undefined")
    policy = a.page.request.get(stack.base_url).headers["content-security-policy"]
    assert "img-src 'self' data:" in policy
    a.screenshot("markdown")
