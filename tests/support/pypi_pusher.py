"""The PyPI `pusher` SDK pointed at a test broadcaster, optionally over TLS or behind a prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pusher
from pusher.http import process_response
from pusher.requests import RequestsBackend


def _backend(ca: Path | None, prefix: str) -> type[RequestsBackend]:
    class TestBackend(RequestsBackend):  # type: ignore[misc]
        """Trusts the test CA; sends to `prefix + path` but signs `path`, as pusher-http-php
        does when its base URL carries a path (the prefix is not part of what it signs)."""

        def __init__(self, client: Any, **options: Any) -> None:
            super().__init__(client, **options)
            if ca is not None:
                self.options["verify"] = str(ca)

        def send_request(self, request: Any) -> Any:
            url = f"{request.base_url}{prefix}{request.signed_path}"
            response = self.session.request(request.method, url, headers=request.headers,
                                            data=request.body, timeout=self.client.timeout,
                                            **self.options)
            return process_response(response.status_code, response.text)

    return TestBackend


def sdk_client(app_id: str, key: str, secret: str, port: int, *, ca: Path | None = None,
               prefix: str = "") -> Any:
    """A `pusher.Pusher` for 127.0.0.1:port (https when `ca` is given)."""
    return pusher.Pusher(app_id=app_id, key=key, secret=secret, host="127.0.0.1", port=port,
                         ssl=ca is not None, backend=_backend(ca, prefix))
