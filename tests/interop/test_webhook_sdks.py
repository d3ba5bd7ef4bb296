"""Webhooks from a real broadcaster, verified by the official server SDKs (PyPI and npm)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pusher
import pytest

from tests.interop.node_process import run_script
from tests.support.processes import Broadcaster, running_broadcaster
from tests.support.pusher_client import PusherTestClient
from tests.support.webhook_receiver import Received, WebhookReceiver, count


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[Broadcaster]:
    hooks = [{"url": receiver.url, "event_types": ["channel_occupied", "member_added"]}]
    with running_broadcaster(tmp_path,
                             extra_env={"REVERB_APP_WEBHOOKS": json.dumps(hooks)}) as broadcaster:
        yield broadcaster


async def captured(server: Broadcaster, receiver: WebhookReceiver) -> Received:
    async with PusherTestClient(server.ws_url) as client:
        await client.subscribe("presence-sdk", key=server.key, secret=server.secret,
                               channel_data=json.dumps({"user_id": "42",
                                                        "user_info": {"name": "Zoë"}}))
        await receiver.until(lambda e: count(e, "member_added") == 1, "member_added")
    (request,) = receiver.snapshot()
    return request


def tampered(request: Received) -> bytes:
    return request.body.replace(b'"42"', b'"43"')


async def test_pypi_sdk_validates(server: Broadcaster, receiver: WebhookReceiver) -> None:
    request = await captured(server, receiver)
    sdk = pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret)
    data = sdk.validate_webhook(request.headers["X-Pusher-Key"],
                                request.headers["X-Pusher-Signature"], request.body)
    assert data is not None and data["events"] == [
        {"name": "channel_occupied", "channel": "presence-sdk"},
        {"name": "member_added", "channel": "presence-sdk", "user_id": "42"}]
    assert sdk.validate_webhook(request.headers["X-Pusher-Key"],
                                request.headers["X-Pusher-Signature"], tampered(request)) is None
    other = pusher.Pusher(app_id=server.app_id, key=server.key, secret="another-secret")
    assert other.validate_webhook(request.headers["X-Pusher-Key"],
                                  request.headers["X-Pusher-Signature"], request.body) is None


async def test_npm_sdk_validates(server: Broadcaster, receiver: WebhookReceiver) -> None:
    request = await captured(server, receiver)
    hooks = [{"headers": request.headers, "body": request.body.decode()},
             {"headers": request.headers, "body": tampered(request).decode()}]
    lines = run_script("verify_webhook.mjs", {"appId": server.app_id, "key": server.key,
                                              "secret": server.secret, "webhooks": hooks})
    assert [line["valid"] for line in lines] == [True, False]
    assert lines[0]["events"][1] == {"name": "member_added", "channel": "presence-sdk",
                                     "user_id": "42"}
