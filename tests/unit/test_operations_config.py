"""Operations options (path, TLS, metrics, shutdown, rate limits): defaults, sources, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.config import ConfigError, load_config
from broadcaster.protocol.paths import normalize_prefix, strip_prefix

ENV = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}


def test_defaults() -> None:
    config = load_config(ENV, host="127.0.0.1")
    assert config.path == ""
    assert (config.tls_cert, config.tls_key) == (None, None)
    assert (config.metrics, config.metrics_host, config.metrics_port) == (True, "127.0.0.1", 9601)
    assert config.shutdown_grace == 5.0
    (app,) = config.apps
    assert app.api_rate_limit is None
    assert (app.rate_limiting_enabled, app.rate_limit_max_attempts,
            app.rate_limit_decay_seconds, app.rate_limit_terminate) == (False, 60, 60, False)


def test_environment_uses_reverb_names_where_reverb_has_them(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    config = load_config({
        **ENV, "REVERB_SERVER_PATH": "ws/", "BROADCASTER_TLS_CERT": str(cert),
        "BROADCASTER_TLS_KEY": str(key), "BROADCASTER_METRICS": "false",
        "BROADCASTER_METRICS_HOST": "127.0.0.2", "BROADCASTER_METRICS_PORT": "9700",
        "BROADCASTER_SHUTDOWN_GRACE": "1.5", "REVERB_APP_RATE_LIMITING_ENABLED": "true",
        "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "5", "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": "10",
        "REVERB_APP_RATE_LIMIT_TERMINATE": "true", "REVERB_APP_API_RATE_LIMIT": "50",
    })
    assert config.path == "/ws"
    assert (config.tls_cert, config.tls_key) == (str(cert), str(key))
    assert (config.metrics, config.metrics_host, config.metrics_port) == (False, "127.0.0.2", 9700)
    assert config.shutdown_grace == 1.5
    (app,) = config.apps
    assert (app.rate_limiting_enabled, app.rate_limit_max_attempts,
            app.rate_limit_decay_seconds, app.rate_limit_terminate) == (True, 5, 10, True)
    assert app.api_rate_limit == 50.0


def test_command_line_wins_over_environment_and_file(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[server]\npath = "/file"\nmetrics_port = 9800\nshutdown_grace = 9\n')
    config = load_config({**ENV, "REVERB_SERVER_PATH": "/env"}, str(file),
                         options={"path": "/cli", "metrics": None, "metrics_port": None})
    assert (config.path, config.metrics_port, config.shutdown_grace) == ("/cli", 9800, 9.0)
    assert load_config({**ENV, "REVERB_SERVER_PATH": "/env"}, str(file)).path == "/env"


@pytest.mark.parametrize(("env", "message"), [
    ({"BROADCASTER_TLS_CERT": "/x.pem"}, "tls_cert and tls_key go together"),
    ({"BROADCASTER_TLS_CERT": "/nope.pem", "BROADCASTER_TLS_KEY": "/nope.key"},
     "is not a readable file"),
    ({"REVERB_SERVER_PATH": "/a?b"}, "REVERB_SERVER_PATH"),
    ({"BROADCASTER_METRICS": "maybe"}, "metrics must be true or false"),
    ({"BROADCASTER_METRICS_PORT": "70000"}, "metrics_port must be between"),
    ({"BROADCASTER_SHUTDOWN_GRACE": "-1"}, "shutdown_grace must be a finite number"),
    ({"BROADCASTER_SHUTDOWN_GRACE": "inf"}, "shutdown_grace must be a finite number"),
    ({"REVERB_APP_API_RATE_LIMIT": "0"}, "must be above 0"),
    ({"REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "0"}, "at least 1"),
])
def test_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        load_config({**ENV, **env})


def test_prefix_normalization_and_matching() -> None:
    assert normalize_prefix("") == normalize_prefix("/") == ""
    assert normalize_prefix("ws") == normalize_prefix("/ws/") == "/ws"
    assert normalize_prefix("/a/b/") == "/a/b"
    with pytest.raises(ValueError):
        normalize_prefix("/a/../b")
    assert strip_prefix("", "/app/k") == "/app/k"
    assert strip_prefix("/ws", "/ws/app/k") == "/app/k"
    assert strip_prefix("/ws", "/wsx/app/k") is None
    assert strip_prefix("/ws", "/ws") is None
    assert strip_prefix("/ws", "/app/k") is None
