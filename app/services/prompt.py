"""What to ask the model for a reply: the conversation's history turned into a request.

Reads messages, writes nothing; kept apart so the prompt rules are in one place.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.models import Conversation, Message, MessageStatus
from app.services.llm import ReplyRequest, Role, Turn

HISTORY_LIMIT = 200


def reply_request(
    session: Session, conversation: Conversation, placeholder_id: int, max_tokens: int
) -> ReplyRequest:
    """What to ask the model for the reply `placeholder_id`: the conversation before it.

    Failed and empty replies are left out, system messages join the system prompt, and turns of
    the same role are merged so the roles alternate as the Messages API expects.
    """
    query = select(Message).where(
        Message.conversation_id == conversation.id, col(Message.id) < placeholder_id
    )
    rows = session.exec(
        query.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(HISTORY_LIMIT)
    ).all()
    system_parts = [conversation.system_prompt] if conversation.system_prompt else []
    turns: list[Turn] = []
    for message in reversed(rows):
        if not message.content.strip() or message.status is MessageStatus.FAILED:
            continue
        if message.role == "system":
            system_parts.append(message.content)
            continue
        role: Role = "user" if message.role == "user" else "assistant"
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].content}\n\n{message.content}")
        else:
            turns.append(Turn(role, message.content))
    while turns and turns[0].role != "user":
        turns.pop(0)
    return ReplyRequest(
        model=conversation.model,
        system_prompt="\n\n".join(system_parts) or None,
        history=turns,
        max_tokens=max_tokens,
    )
