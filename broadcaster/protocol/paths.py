"""The optional path prefix (`REVERB_SERVER_PATH`) in front of `/app/…`, `/apps/…` and health.

Behind a reverse proxy that forwards `https://example.com/ws/app/{key}` unchanged, the server is
configured with the prefix `/ws` and serves `/ws/app/{key}`, `/ws/apps/{id}/…`, `/ws/up`.
"""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$")


def normalize_prefix(value: str) -> str:
    """`"ws/"`, `"/ws"` and `"/ws/"` all become `"/ws"`; `""` and `"/"` mean no prefix.

    Raises ValueError for characters that cannot appear in a URL path (`?`, `#`, spaces...).
    """
    segments = [segment for segment in value.strip().split("/") if segment]
    for segment in segments:
        if not _SEGMENT.match(segment) or segment in (".", ".."):
            raise ValueError(f"{value!r} is not a URL path (segment {segment!r})")
    return "".join(f"/{segment}" for segment in segments)


def strip_prefix(prefix: str, path: str) -> str | None:
    """The path the routes see, or None when `path` is outside the prefix.

    The prefix matches whole segments only: `/ws` covers `/ws/app/k`, never `/wsx/app/k`.
    """
    if not prefix:
        return path
    if path.startswith(prefix) and path[len(prefix):len(prefix) + 1] == "/":
        return path[len(prefix):]
    return None
