"""Two people in one conversation, each in their own browser: typing, presence, a streamed reply."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Request, expect

from tests.e2e.chat_page import ChatPage, Person
from tests.e2e.conftest import Stack
from tests.support.fake_claude import Script

REPLY = (
    "Streaming means the answer arrives in small pieces while it is being written. "
    "Each piece carries a sequence number so that every browser in the room can put the "
    "pieces together in order without losing or repeating any of them. When the last piece "
    "has arrived the reply is stored and marked complete for everyone"
)


def _is_message_post(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/messages")


def _shared_room(
    stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person],
    title: str,
) -> tuple[ChatPage, ChatPage, Person, Person]:
    ada, ben = people("Ada"), people("Ben")
    a = open_page(stack.base_url)
    a.sign_up(ada)
    b = open_page(stack.base_url)
    b.sign_up(ben)
    a.create_conversation(title)
    a.invite(ben.email)
    b.page.reload()  # the shared conversation is in Ben's list from now on
    b.open_from_list(title)
    return a, b, ada, ben


def test_two_people_see_each_other_typing_and_the_same_streamed_reply(
    stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person]
) -> None:
    stack.claude.script(Script(reply=REPLY, chunk_size=6, delay=0.03), match="how streaming works")
    a, b, ada, ben = _shared_room(stack, open_page, people, "Design review")
    a.expect_connected()
    b.expect_connected()

    # Both are in the room, online, on each other's screen.
    expect(a.member(ben.name)).to_have_attribute("data-online", "true")
    expect(b.member(ada.name)).to_have_attribute("data-online", "true")

    a.composer().press_sequentially("Please explain how streaming works", delay=25)
    expect(b.typing_indicator()).to_have_text(f"{ada.name} is typing…")
    b.screenshot("shared-room-typing")
    with a.page.expect_request(_is_message_post) as sent:
        a.composer().press("Enter")
    # The socket id goes with the post, so the app can leave the sender out (Laravel's toOthers).
    assert re.fullmatch(r"\d+\.\d+", sent.value.headers.get("x-socket-id", ""))
    assert sent.value.headers.get("authorization", "").startswith("Bearer ")

    reply_id = a.reply_id_after(0)
    lengths = a.reply_lengths_while_streaming(reply_id)
    assert len(lengths) >= 5, f"the reply did not grow over several frames: {lengths}"
    assert lengths == sorted(lengths), f"the reply's text shrank while streaming: {lengths}"

    for page in (a, b):
        reply = page.wait_for_reply(reply_id)
        assert page.reply_text(reply) == REPLY
    question = b.messages("user").filter(has_text="Please explain how streaming works")
    expect(question).to_have_count(1)
    expect(b.typing_indicator()).to_have_text("")
    a.screenshot("shared-room-owner")
    b.screenshot("shared-room-member")


def test_the_stop_button_ends_a_reply_and_keeps_its_text(
    stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person]
) -> None:
    stack.claude.script(Script(reply=REPLY * 3, chunk_size=4, delay=0.05), match="long answer")
    a, b, _ada, _ben = _shared_room(stack, open_page, people, "Stopping early")
    a.expect_connected()
    a.send("Give me a long answer")
    reply_id = a.reply_id_after(0)
    reply = a.page.locator(f"[data-testid=message][data-message-id='{reply_id}']")
    expect(reply.get_by_test_id("message-content")).to_contain_text("Streaming means")

    a.page.get_by_test_id("composer-stop").click()

    expect(reply).to_have_attribute("data-status", "cancelled")
    kept = a.reply_text(reply)
    assert kept and (REPLY * 3).startswith(kept) and len(kept) < len(REPLY * 3)
    expect(reply).to_contain_text("stopped")
    other = b.page.locator(f"[data-testid=message][data-message-id='{reply_id}']")
    expect(other).to_have_attribute("data-status", "cancelled")
    expect(a.page.get_by_test_id("composer-stop")).to_have_count(0)


def test_a_removed_member_leaves_the_live_room_and_hears_nothing_more(
    stack: Stack, open_page: Callable[[str], ChatPage], people: Callable[[str], Person]
) -> None:
    stack.claude.script(Script(reply="Only for the owner now."), match="after the removal")
    a, b, _ada, ben = _shared_room(stack, open_page, people, "Shrinking room")
    a.expect_connected()
    b.expect_connected()
    expect(a.member(ben.name)).to_have_attribute("data-online", "true")
    a.page.once("dialog", lambda dialog: dialog.accept())
    a.member(ben.name).get_by_test_id("remove-member").click()
    expect(b.page.get_by_test_id("room-error")).to_contain_text(
        "You don't have access to this conversation")
    expect(a.member(ben.name)).to_have_count(0)

    a.send("A note after the removal")
    reply = a.wait_for_reply(a.reply_id_after(0))
    assert a.reply_text(reply) == "Only for the owner now."
    b.page.wait_for_timeout(500)
    expect(b.page.get_by_test_id("message")).to_have_count(0)
    assert "after the removal" not in b.page.content()
    b.screenshot("removed-member")
