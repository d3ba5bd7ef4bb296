"""Reply models behind one small interface: Claude through the `anthropic` SDK, or an offline demo.

A model turns a `ReplyRequest` into an async stream of text deltas. Every failure surfaces as
`ReplyError` with a reason a person can read; nothing else escapes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import anthropic
from anthropic.types import MessageParam

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


@dataclass(frozen=True)
class ReplyRequest:
    model: str
    system_prompt: str | None
    history: Sequence[Turn]
    max_tokens: int


class ReplyError(Exception):
    """The model could not finish the reply; `str(error)` is shown to users."""


class ReplyModel(Protocol):
    label: str

    def stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        """Yield the reply's text deltas in order; raise `ReplyError` if it cannot finish."""
        ...

    async def aclose(self) -> None: ...


def _error_type(exc: anthropic.APIError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def _status_reason(exc: anthropic.APIStatusError) -> str:
    status = exc.status_code
    kind = _error_type(exc)
    # A status below 400 means an `error` event inside a stream that had started fine.
    status_text = "mid-stream" if status < 400 else str(status)
    if kind == "authentication_error" or isinstance(exc, anthropic.AuthenticationError):
        return f"Claude rejected the API key ({status_text}). Check ANTHROPIC_API_KEY."
    if kind == "permission_error" or isinstance(exc, anthropic.PermissionDeniedError):
        return f"The API key may not use this model ({status_text})."
    if kind == "rate_limit_error" or isinstance(exc, anthropic.RateLimitError):
        return f"Claude's rate limit was reached ({status_text}); try again in a moment."
    if kind == "overloaded_error" or status == 529:
        return f"Claude is overloaded right now ({status_text}); try again in a moment."
    if isinstance(exc, anthropic.BadRequestError):
        return f"Claude refused the request ({status_text}): {_api_message(exc)}"
    return f"Claude answered with an error ({status_text}): {_api_message(exc)}"


def _api_message(exc: anthropic.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return exc.message


def _stream_error_reason(error: dict[str, Any]) -> str:
    """The reason for an `error` event inside a stream that had started fine."""
    kind, message = error.get("type"), str(error.get("message") or "unknown error")
    if kind == "overloaded_error":
        return "Claude is overloaded right now (mid-stream); try again in a moment."
    if kind == "rate_limit_error":
        return "Claude's rate limit was reached (mid-stream); try again in a moment."
    return f"Claude's stream failed (mid-stream): {message}"


class ClaudeModel:
    """Streams replies from Claude's Messages API with `anthropic.AsyncAnthropic`."""

    label = "Claude"

    def __init__(self, api_key: str, base_url: str | None, max_retries: int) -> None:
        # On aiohttp rather than the default httpx: reading a stream costs about a third less
        # CPU per delta, and every running reply reads one.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries,
            http_client=anthropic.DefaultAioHttpClient(),
        )

    async def stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        messages = [
            cast(MessageParam, {"role": turn.role, "content": turn.content})
            for turn in request.history
        ]
        try:
            # The SDK builds, signs, retries and checks the request; the event stream itself is
            # read raw. Its typed events (and more so the `messages.stream()` helper's snapshot
            # of the whole message) cost more CPU per delta than the rest of the app together,
            # and only the text deltas and the stop reason are needed here.
            async with self._client.messages.with_streaming_response.create(
                model=request.model,
                max_tokens=request.max_tokens,
                messages=messages,
                system=request.system_prompt or anthropic.omit,
                stream=True,
            ) as response:
                stop_reason: str | None = None
                async for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    kind = event.get("type")
                    if kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield str(delta["text"])
                    elif kind == "message_delta":
                        stop_reason = (event.get("delta") or {}).get("stop_reason")
                    elif kind == "error":
                        raise ReplyError(_stream_error_reason(event.get("error") or {}))
            if stop_reason is None:
                raise ReplyError("The connection to Claude ended before the reply was done.")
        except anthropic.APIStatusError as exc:
            raise ReplyError(_status_reason(exc)) from exc
        except anthropic.APITimeoutError as exc:
            raise ReplyError("Claude did not answer in time.") from exc
        except anthropic.APIConnectionError as exc:
            raise ReplyError(f"Lost the connection to Claude: {exc.__cause__ or exc}") from exc
        except anthropic.APIError as exc:
            raise ReplyError(f"Claude's stream failed: {_api_message(exc)}") from exc
        except (ReplyError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Transport errors can surface unwrapped mid-stream (e.g. a truncated chunked body).
            raise ReplyError(f"Lost the connection to Claude: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.close()


DEMO_REPLY = (
    "Hello! I am the offline demo model, not Claude: no ANTHROPIC_API_KEY is set, so this "
    "reply is canned and streamed locally, token by token, to show how replies arrive. "
    "You said: \u201c{prompt}\u201d. Set ANTHROPIC_API_KEY and restart the app to talk to "
    "Claude for real."
)


class DemoModel:
    """A clearly labelled local stand-in for Claude that streams a canned reply."""

    def __init__(self, label: str, token_delay_seconds: float) -> None:
        self.label = label
        self._delay = token_delay_seconds

    async def stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        last_user = next((t.content for t in reversed(request.history) if t.role == "user"), "")
        prompt = last_user if len(last_user) <= 120 else last_user[:117] + "..."
        text = DEMO_REPLY.format(prompt=prompt)
        words = text.split(" ")
        for index, word in enumerate(words):
            await asyncio.sleep(self._delay)
            yield word if index == 0 else " " + word

    async def aclose(self) -> None:
        return None
