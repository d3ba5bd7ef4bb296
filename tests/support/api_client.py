"""Signed Pusher HTTP API calls written out independently of the server's code."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx


def signed_query(key: str, secret: str, method: str, path: str, body: bytes,
                 params: dict[str, str] | None = None, timestamp: int | None = None) -> str:
    query: dict[str, str] = {
        "auth_key": key,
        "auth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "auth_version": "1.0",
        **(params or {}),
    }
    if body:
        query["body_md5"] = hashlib.md5(body).hexdigest()
    to_sign = "&".join(f"{k}={query[k]}" for k in sorted(query))
    signature = hmac.new(secret.encode(), f"{method}\n{path}\n{to_sign}".encode(),
                         hashlib.sha256).hexdigest()
    return urlencode({**query, "auth_signature": signature})


class ApiClient:
    """Calls one app's REST API on a broadcaster over a kept-alive connection."""

    def __init__(self, base_url: str, app_id: str, key: str, secret: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=5)
        self.app_id, self.key, self.secret = app_id, key, secret

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, resource: str, body: Any = None,
                params: dict[str, str] | None = None, **sign: Any) -> httpx.Response:
        path = f"/apps/{self.app_id}/{resource}"
        raw = b"" if body is None else (body if isinstance(body, bytes) else
                                        json.dumps(body).encode())
        query = signed_query(self.key, self.secret, method, path, raw, params, **sign)
        return self.http.request(method, f"{path}?{query}", content=raw or None,
                                 headers={"content-type": "application/json"})

    def trigger(self, channel: str | list[str], name: str, data: Any,
                socket_id: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"name": name, "data": data if isinstance(data, str) else
                                json.dumps(data)}
        body["channels" if isinstance(channel, list) else "channel"] = channel
        if socket_id:
            body["socket_id"] = socket_id
        return self.request("POST", "events", body)
