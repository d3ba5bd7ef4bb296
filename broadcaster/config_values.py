"""The error and the value parsers every part of the broadcaster's configuration shares.

A leaf module (standard library only), so that `config.py` and `scaling.py` use one copy of each
rule without importing each other.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the setting and the fix."""


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def parse_bool(name: str, value: Any) -> bool:
    """`value` as a boolean: a TOML boolean, or one of 1/true/yes/on and 0/false/no/off
    (case-insensitive; an empty string is false, as an unset environment variable)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")
