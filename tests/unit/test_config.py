"""Configuration from environment variables and TOML, with clear errors."""

from pathlib import Path

import pytest

from broadcaster.config import ConfigError, load_config

ENV = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}


def test_reverb_env_names() -> None:
    config = load_config({**ENV, "REVERB_SERVER_HOST": "127.0.0.1", "REVERB_SERVER_PORT": "9000",
                          "REVERB_APP_ACTIVITY_TIMEOUT": "45", "REVERB_APP_MAX_CONNECTIONS": "10",
                          "REVERB_APP_ALLOWED_ORIGINS": "example.com, *.example.org",
                          "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "none"})
    (app,) = config.apps
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert (app.id, app.key, app.secret) == ("1", "k", "s")
    assert app.activity_timeout == 45
    assert app.max_connections == 10
    assert app.allowed_origins == ("example.com", "*.example.org")
    assert app.client_events is False
    assert not config.development_app


def test_defaults_and_development_app() -> None:
    config = load_config({})
    assert (config.host, config.port) == ("0.0.0.0", 8080)
    assert config.development_app
    (app,) = config.apps
    assert app.secret.startswith("dev-secret-") and len(app.secret) > 20
    assert load_config({}).apps[0].secret != app.secret, "a fresh secret every start"
    assert app.activity_timeout == 30 and app.client_events and app.max_connections is None


def test_flags_beat_env() -> None:
    config = load_config({**ENV, "REVERB_SERVER_PORT": "9000"}, host="::1", port=7000)
    assert (config.host, config.port) == ("::1", 7000)


def test_toml_with_many_apps(tmp_path: Path) -> None:
    path = tmp_path / "apps.toml"
    path.write_text(
        '[server]\nport = 6001\nmax_request_size = 50000\n'
        '[[apps]]\nid = "a"\nkey = "ka"\nsecret = "sa"\nclient_events = false\n'
        '[[apps]]\nid = "b"\nkey = "kb"\nsecret = "sb"\nallowed_origins = ["x.test"]\n'
    )
    config = load_config({}, str(path))
    assert [a.id for a in config.apps] == ["a", "b"]
    assert config.port == 6001 and config.limits.max_request_size == 50000
    assert config.apps[1].allowed_origins == ("x.test",)


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k"}, None, "REVERB_APP_SECRET is required"),
        ({**ENV, "REVERB_APP_ACTIVITY_TIMEOUT": "soon"}, None, "must be an integer"),
        ({**ENV, "REVERB_APP_CLIENT_EVENTS": "maybe"}, None, "true or false"),
        ({**ENV, "REVERB_SERVER_PORT": "70000"}, None, "between 0 and 65535"),
        ({}, "[[apps]]\nid='a'\nkey='k'\n", "secret is required"),
        ({}, "[[apps]]\nid='a'\nkey='k'\nsecret='s'\ncolour='red'\n", "unknown option"),
        ({}, "[apps\n", "not valid TOML"),
        ({}, "[extra]\n", "unknown section"),
        (ENV, "[[apps]]\nid='1'\nkey='other'\nsecret='s'\n", "share the id"),
    ],
)
def test_mistakes_are_reported_clearly(env: dict[str, str], toml: str | None, message: str,
                                       tmp_path: Path) -> None:
    path = None
    if toml is not None:
        path = tmp_path / "c.toml"
        path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_config(env, str(path) if path else None)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config({}, "/nonexistent/broadcaster.toml")


def test_development_app_matches_the_chat_apps_defaults() -> None:
    from app.config import load_settings

    (app,) = load_config({}).apps
    chat = load_settings({}).broadcaster
    assert (app.id, app.key) == (chat.app_id, chat.key)
