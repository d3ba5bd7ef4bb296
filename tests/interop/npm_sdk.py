"""Call the HTTP API with the unmodified npm `pusher` SDK, through js/server_sdk.mjs."""

from __future__ import annotations

from typing import Any

from tests.interop.node_process import JsonObject, run_script
from tests.support.processes import Broadcaster


def call(method: str, *args: Any) -> JsonObject:
    """One SDK call for `npm_sdk_calls`: `call("trigger", channel, event, data)`."""
    return {"method": method, "args": list(args)}


def npm_sdk_calls(
    server: Broadcaster, calls: list[JsonObject], secret: str | None = None
) -> list[JsonObject]:
    """Make `calls` in order with the npm SDK and return one result line per call.

    A result is {kind: "response", status, body} or, when the SDK rejected the answer or the
    request, {kind: "request_error", status, body, message}.
    """
    lines = run_script(
        "server_sdk.mjs",
        {
            "appId": server.app_id,
            "key": server.key,
            "secret": server.secret if secret is None else secret,
            "host": server.host,
            "port": server.port,
            "calls": calls,
        },
    )
    assert [line.get("index") for line in lines] == list(range(len(calls))), lines
    return lines
