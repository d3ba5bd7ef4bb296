"""Reading request bodies (JSON or form) and checking fields, collecting per-field messages."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from app.errors import ApiError, validation_failed

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


async def read_body(request: Request) -> dict[str, Any]:
    """The body as a dict: JSON objects and url-encoded or multipart forms are accepted."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
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
