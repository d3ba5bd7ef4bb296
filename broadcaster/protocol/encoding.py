"""Text limits and JSON parsing shared by the WebSocket and HTTP rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from json.scanner import make_scanner
from typing import Any, cast

quote_json_string = encode_basestring_ascii
"""A JSON string literal exactly as `json.dumps(text)` writes it (ASCII, escaped; in C)."""


def utf8_size_exceeds(text: str, limit: int) -> bool:
    """True when `text` takes more than `limit` bytes in UTF-8.

    A character is 1 to 4 bytes, so the text is only encoded when its length alone does not
    decide: the common short message costs no copy.
    """
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode()) > limit


# The scanner `json.loads` ends up in (C when available), called without the two Python layers
# and whitespace matches around it: 0.6 us instead of 1.9 us for a 260-byte object.
_scan = cast(Callable[[str, int], tuple[Any, int]], make_scanner(cast(Any, json.JSONDecoder())))


def parse_json(text: str | bytes) -> Any:
    """`json.loads`, with every failure (syntax, bad UTF-8, nesting too deep) as ValueError.

    Deeply nested input makes the decoder raise RecursionError, which is no ValueError: callers
    that turn ValueError into a 4xx answer would otherwise let it escape as a server error.
    """
    try:
        if isinstance(text, str) and text[:1] == "{" and text[-1:] == "}":
            # An object without surrounding whitespace (what clients send) goes straight to the
            # scanner; anything it does not take whole goes through `json.loads` for its error.
            try:
                value, end = _scan(text, 0)
            except (ValueError, StopIteration):
                pass
            else:
                if end == len(text):
                    return value
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dump_json(value: Any) -> str:
    """Compact JSON; ValueError when `value` is nested too deeply to serialize."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
