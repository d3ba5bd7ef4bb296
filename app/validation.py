"""Reading request bodies (JSON; forms only where pusher-js sends them) and checking fields."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from app.errors import ApiError, validation_failed
from app.security import BodyTooLarge

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


MAX_JSON_DEPTH = 32


def _check_json(value: Any) -> None:
    """400 for nesting deeper than `MAX_JSON_DEPTH` or a lone surrogate (not storable as UTF-8)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # bounded: every item is visited once
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(400, "The request body is nested too deeply.")
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "The request body contains an invalid character.") from None
        elif isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


async def _raw_body(request: Request) -> bytes:
    try:
        return await request.body()
    except BodyTooLarge:
        raise ApiError(413, "The request body is too large.") from None


async def read_body(request: Request, *, allow_form: bool = False) -> dict[str, Any]:
    """The body as a dict: a JSON object, or (only where `allow_form`) an url-encoded form.

    Any other content type with a body is refused (415): forms and `text/plain` are what a
    cross-site page can send without asking. Deep nesting and lone surrogates are 400s.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if allow_form and media_type == "application/x-www-form-urlencoded":
        try:
            form = await request.form()
        except BodyTooLarge:
            raise ApiError(413, "The request body is too large.") from None
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        _check_json(fields)
        return fields
    raw = await _raw_body(request)
    if not raw.strip():
        return {}
    if media_type != "application/json":
        raise ApiError(415, "Send the request body as application/json.")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    _check_json(body)
    return body


class Fields:
    """Checks fields of one body; `done()` raises 422 listing every field's problems."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self.errors: dict[str, list[str]] = {}

    def _fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        max_length: int | None = None,
        min_length: int = 0,
        email: bool = False,
        strip: bool = True,
    ) -> str | None:
        """The string field `name`, or None when it is optional and absent."""
        value = self._body.get(name)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if required:
                self._fail(name, f"The {name} field is required.")
            return None
        if not isinstance(value, str):
            self._fail(name, f"The {name} field must be a string.")
            return None
        if strip:
            value = value.strip()
        if len(value) < min_length:
            self._fail(name, f"The {name} field must be at least {min_length} characters.")
        if max_length is not None and len(value) > max_length:
            self._fail(name, f"The {name} field must not be greater than {max_length} characters.")
        if email and not _EMAIL.match(value):
            self._fail(name, f"The {name} field must be a valid email address.")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self._body.get(name)
        if value is None or value == "":
            return default
        if value not in options:
            self._fail(name, f"The selected {name} is invalid. Allowed: {', '.join(options)}.")
            return default
        return str(value)

    def boolean(self, name: str) -> bool:
        value = self._body.get(name)
        if isinstance(value, bool):
            return value
        if value in ("1", "true", 1):
            return True
        if value in ("0", "false", 0):
            return False
        self._fail(name, f"The {name} field must be true or false.")
        return False

    def add_error(self, name: str, message: str) -> None:
        self._fail(name, message)

    def done(self) -> None:
        if self.errors:
            raise validation_failed(self.errors)


def int_param(raw: str | None, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """A bounded integer query parameter; 422 when it is not one."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_failed({name: [f"The {name} parameter must be an integer."]}) from None
    if not minimum <= value <= maximum:
        raise validation_failed(
            {name: [f"The {name} parameter must be between {minimum} and {maximum}."]}
        )
    return value
