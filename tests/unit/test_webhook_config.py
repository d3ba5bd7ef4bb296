"""Webhooks in the configuration: `[[apps.webhooks]]` in TOML and `REVERB_APP_WEBHOOKS`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broadcaster.config import ConfigError, load_config
from broadcaster.protocol.webhook_config import Webhook

ENV = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}

TOML = """
[[apps]]
id = "1"
key = "k1"
secret = "s1"

[[apps.webhooks]]
url = "http://127.0.0.1:9000/hooks"
event_types = ["channel_occupied", "channel_vacated"]

[[apps.webhooks]]
url = "https://hooks.example.test/presence"
event_types = ["member_added", "member_removed"]
filter = { channel_name_starts_with = "presence-" }
headers = { Authorization = "Bearer abc" }

[[apps]]
id = "2"
key = "k2"
secret = "s2"
"""


def test_toml_webhooks(tmp_path: Path) -> None:
    path = tmp_path / "broadcaster.toml"
    path.write_text(TOML)
    first, second = load_config({}, str(path)).apps
    assert first.webhooks == (
        Webhook("http://127.0.0.1:9000/hooks",
                frozenset({"channel_occupied", "channel_vacated"})),
        Webhook("https://hooks.example.test/presence", frozenset({"member_added",
                                                                  "member_removed"}),
                "presence-", (("Authorization", "Bearer abc"),)),
    )
    assert second.webhooks == ()


def test_env_webhooks_json() -> None:
    hooks = [{"url": "http://127.0.0.1:9000/", "event_types": ["client_event"]}]
    (app,) = load_config({**ENV, "REVERB_APP_WEBHOOKS": json.dumps(hooks)}).apps
    assert app.webhooks == (Webhook("http://127.0.0.1:9000/", frozenset({"client_event"})),)


@pytest.mark.parametrize(("value", "message"), [
    ("not json", "REVERB_APP_WEBHOOKS: is not valid JSON"),
    ('[{"url": "ws://h/", "event_types": ["cache_miss"]}]', "http:// or https://"),
    ('[{"url": "http://h/", "event_types": ["nope"]}]', "unknown event type"),
    ('[{"url": "http://h/", "event_types": ["cache_miss"], "headers": {"A": [1]}}]',
     "string value"),
])
def test_env_mistakes(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({**ENV, "REVERB_APP_WEBHOOKS": value})
