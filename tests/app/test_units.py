"""Pure parts of the app, checked against the Pusher spec's test vectors and by hand."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from types import SimpleNamespace

import pytest

from app.auth import HashingBusy, PasswordHashing
from app.config import ConfigError, load_settings
from app.ratelimit import SlidingWindowLimiter
from app.services.channel_auth import presence_auth, private_auth, user_auth
from app.services.events import message_event, parse_channel
from app.services.publisher import signed_query, valid_socket_id

KEY, SECRET = "278d425bdf160c739803", "7ad3773142a6692b25b8"


def test_private_channel_signature_matches_the_spec_vector() -> None:
    assert private_auth(KEY, SECRET, "1234.1234", "private-foobar") == {
        "auth": f"{KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}


def test_presence_signature_covers_the_exact_channel_data() -> None:
    body = presence_auth(KEY, SECRET, "1234.1234", "presence-foobar", 7, {"id": 7, "name": "A"})
    assert json.loads(body["channel_data"]) == {"user_id": 7, "user_info": {"id": 7, "name": "A"}}
    expected = hmac.new(SECRET.encode(), f"1234.1234:presence-foobar:{body['channel_data']}"
                        .encode(), hashlib.sha256).hexdigest()
    assert body["auth"] == f"{KEY}:{expected}"


def test_signin_signature_format() -> None:
    body = user_auth(KEY, SECRET, "1234.1234", 12345, {"id": 12345, "name": "x"})
    assert json.loads(body["user_data"])["id"] == "12345"
    assert body["auth"].startswith(f"{KEY}:") and len(body["auth"]) == len(KEY) + 65


def test_http_api_signature_matches_the_spec_vector() -> None:
    body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    query = signed_query(KEY, SECRET, "POST", "/apps/3/events", body, 1353088179)
    assert "body_md5=ec365a775a4cd0599faeb73354201b6f" in query
    assert query.endswith(
        "auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c")


@pytest.mark.parametrize(("value", "ok"), [("123.456", True), ("1.2", True), ("abc", False),
                                           ("1.2.3", False), ("", False), (None, False)])
def test_socket_ids_are_checked(value: str | None, ok: bool) -> None:
    assert (valid_socket_id(value) is not None) is ok


def test_channel_names_map_to_conversations() -> None:
    token = "0123456789abcdef" * 2
    assert parse_channel(f"private-conversation.42.{token}") == (42, token)
    assert parse_channel(f"presence-conversation.7.{token}") == (7, token)
    for name in ("private-conversation.", "private-conversation.4x", "private-other.1",
                 "conversation.1", "private-conversation.01", "private-conversation.42",
                 f"private-conversation.01.{token}", f"private-conversation.\u0663.{token}",
                 f"private-conversation.{2**63}.{token}", f"private-conversation.4.{token}x",
                 f"private-conversation.4.{token.upper()}", f"private-conversation.4.{token}\n"):
        assert parse_channel(name) is None


def test_oversized_messages_are_cut_to_fit_an_event() -> None:
    small = {"id": 1, "content": "short"}
    assert message_event(small, 10_240) == {"message": small}
    text = "é\"" * 20_000
    big = {"id": 2, "content": text}
    event = message_event(big, 10_240)
    encoded = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(encoded) <= 10_240
    assert event["message"]["content_truncated"] is True
    assert text.startswith(event["message"]["content"])
    assert len(event["message"]["content"]) > 2_000


def test_sliding_window_limiter() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(3, 60.0, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a") == 60
    assert limiter.hit("b") is None
    now[0] = 59.5
    assert limiter.hit("a") == 1
    now[0] = 60.0
    assert limiter.hit("a") is None


def test_settings_defaults_and_errors() -> None:
    settings = load_settings({})
    # The demo account (public password) exists only when asked for, as `make run` does.
    assert settings.demo_mode and settings.environment == "development"
    assert settings.seed_demo is False and load_settings({"APP_SEED_DEMO": "1"}).seed_demo
    with pytest.raises(ConfigError, match="APP_SEED_DEMO must not be set"):
        load_settings({"APP_ENV": "production", "APP_SECRET_KEY": "k" * 40,
                       "REVERB_APP_SECRET": "s", "APP_SEED_DEMO": "1"})
    assert settings.secret_key_generated and settings.broadcaster.port == 8080
    assert settings.database_url == "sqlite:///var/chat.sqlite3"
    assert load_settings({"ANTHROPIC_API_KEY": "k", "APP_ENV": "testing"}).seed_demo is False
    https = load_settings({"REVERB_SCHEME": "https"}).broadcaster
    assert https.port == 443 and https.base_url == "https://127.0.0.1:443"
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings({"APP_ENV": "staging"})
    with pytest.raises(ConfigError, match="APP_SEED_DEMO"):
        load_settings({"APP_SEED_DEMO": "maybe"})
    with pytest.raises(ConfigError, match="REVERB_PORT"):
        load_settings({"REVERB_PORT": "70000"})


async def test_password_hashing_runs_a_bounded_number_at_once() -> None:
    hashing = PasswordHashing(concurrency=2, max_waiting=4)
    running = peak = 0

    def slow_hash(password: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        time.sleep(0.05)
        running -= 1
        return f"hash-{password}"

    hashing._hasher = SimpleNamespace(hash=slow_hash)  # type: ignore[assignment]
    results = await asyncio.gather(*(hashing.hash_async(str(n)) for n in range(6)),
                                   return_exceptions=True)
    assert peak == 2
    assert [r for r in results if isinstance(r, str)] == [f"hash-{n}" for n in range(4)]
    assert sum(isinstance(r, HashingBusy) for r in results) == 2


def test_redis_settings_use_the_broadcasters_names_and_parser() -> None:
    assert load_settings({}).redis is None  # one process, state in memory
    redis = load_settings({"REDIS_URL": "redis://:pw@127.0.0.1:6390/2"}).redis
    assert redis is not None and (redis.host, redis.port, redis.db) == ("127.0.0.1", 6390, 2)
    assert redis.password == "pw" and redis.mode == "standalone"
    by_host = load_settings({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6391"}).redis
    assert by_host is not None and by_host.port == 6391
    with pytest.raises(ConfigError, match="REDIS_URL must start with redis://"):
        load_settings({"REDIS_URL": "http://127.0.0.1"})
    with pytest.raises(ConfigError, match="APP_EVENT_LOOP must be"):
        load_settings({"APP_EVENT_LOOP": "trio"})


async def test_the_memory_state_holds_reply_slots_and_limits() -> None:
    from app.shared_state import Limit, MemoryState

    state = MemoryState()
    holds = [await state.hold_reply(7, 2) for _ in range(3)]
    assert holds[0] and holds[1] and holds[2] is None
    assert holds[0] is not None
    await state.release_reply(7, holds[0])
    assert await state.hold_reply(7, 2) is not None
    limit = Limit("typing", 2)
    assert [await state.hit(limit, "1:2") for _ in range(3)][:2] == [None, None]
    assert await state.request_stop(1, None) is False
