"""The bytes of an HTTP/1.1 response with a JSON body: the one response writer of the server.

Every answer the server gives over HTTP (API responses, probes, refused upgrades, parse errors)
is built here, so the headers are the same everywhere: `content-type: application/json`, an exact
`content-length`, extra headers such as `Retry-After`, and `connection: close` when the
connection ends after this response.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
# The head of the common answers, built once: a status line per status and the content type.
_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = _REASONS.get(status, b"Unknown")
        line = _STATUS_LINES[status] = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                                        b"content-length: " % (status, reason))
    return line


def encode_response(status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = (), *,
                    close: bool = False, head_only: bool = False) -> bytes:
    """A complete response: status line, headers, then `body` (left out for a HEAD request,
    whose `content-length` still gives the size a GET would have had).

    Header names and values must already be valid header bytes (no CR or LF).
    """
    parts = [_status_line(status), b"%d\r\n" % len(body)]
    for name, value in headers:
        parts.append(name + b": " + value + b"\r\n")
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)
