"""An async client for the Pusher HTTP API: signed requests, a keep-alive pool, bounded retries.

The database is the source of truth, so a failed publish is logged and counted, never raised:
callers carry on and clients catch up over the REST API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from app.config import BroadcasterSettings
from broadcaster.protocol import signatures

logger = logging.getLogger("app.publisher")
_SOCKET_ID = re.compile(r"^\d+\.\d+$")


def valid_socket_id(value: str | None) -> str | None:
    """`value` if it has the `digits.digits` shape Pusher requires, else None."""
    return value if value and _SOCKET_ID.match(value) else None


def signed_query(
    key: str, secret: str, method: str, path: str, body: bytes, timestamp: int
) -> str:
    """The query string of a Pusher HTTP API call, `auth_signature` included.

    Signed by the broadcaster's own `signatures` module; `body_md5` is signed whenever there is
    a body.
    """
    params = {"auth_key": key, "auth_timestamp": str(timestamp), "auth_version": "1.0"}
    if body:
        params["body_md5"] = signatures.body_md5(body)
    signature = signatures.sign_api_request(secret, method, path, params)
    query = "&".join(f"{name}={quote(params[name], safe='')}" for name in sorted(params))
    return f"{query}&auth_signature={signature}"


@dataclass
class PublishStats:
    """What the publisher did since start; `durations` holds recent per-publish seconds."""

    published: int = 0
    failed: int = 0
    retries: int = 0
    last_error: str | None = None
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))


class PusherPublisher:
    """Triggers events on one app of a Pusher-compatible server over kept-alive connections."""

    def __init__(
        self,
        settings: BroadcasterSettings,
        *,
        timeout_seconds: float = 2.0,
        attempts: int = 3,
        retry_backoff_seconds: float = 0.05,
    ) -> None:
        self._settings = settings
        self._attempts = max(1, attempts)
        self._backoff = retry_backoff_seconds
        self._path = f"/apps/{settings.app_id}/events"
        self._client = httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=32, max_keepalive_connections=16, keepalive_expiry=60
            ),
            headers={"content-type": "application/json"},
        )
        self.stats = PublishStats()

    async def trigger(
        self,
        channels: Sequence[str],
        event: str,
        data: Mapping[str, Any],
        socket_id: str | None = None,
    ) -> bool:
        """Publish `event` with `data` (JSON-encoded) to `channels`, excluding `socket_id`.

        Returns True once the server accepted it; False after the bounded retries failed or on a
        refusal that retrying cannot fix (4xx). Never raises for network or server errors.
        """
        payload: dict[str, Any] = {
            "name": event,
            "channels": list(channels),
            "data": json.dumps(data, separators=(",", ":"), ensure_ascii=False),
        }
        if valid_socket_id(socket_id):
            payload["socket_id"] = socket_id
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        started = time.perf_counter()
        for attempt in range(self._attempts):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            outcome = await self._send(body)
            if outcome is None:
                self.stats.published += 1
                self.stats.durations.append(time.perf_counter() - started)
                return True
            retryable, error = outcome
            self.stats.last_error = error
            if not retryable:
                break
        self.stats.failed += 1
        logger.warning("publish of %s to %s failed: %s", event, ",".join(channels),
                       self.stats.last_error)
        return False

    async def _send(self, body: bytes) -> tuple[bool, str] | None:
        """None on success, else (worth retrying, reason)."""
        query = signed_query(
            self._settings.key, self._settings.secret, "POST", self._path, body, int(time.time())
        )
        try:
            response = await self._client.post(f"{self._path}?{query}", content=body)
        except httpx.HTTPError as exc:
            return True, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if response.status_code < 300:
            return None
        reason = f"HTTP {response.status_code}: {response.text[:200]}"
        return response.status_code >= 500 or response.status_code == 429, reason

    async def aclose(self) -> None:
        await self._client.aclose()
