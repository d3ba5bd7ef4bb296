"""`Config.scaling`: Reverb's environment names and a `[scaling]` TOML table reach the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.config import ConfigError, load_config

APP = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}


def test_scaling_is_off_unless_enabled() -> None:
    assert load_config(APP).scaling is None
    assert load_config({**APP, "REDIS_HOST": "10.0.0.1"}).scaling is None


def test_environment_enables_scaling() -> None:
    config = load_config({**APP, "REVERB_SCALING_ENABLED": "true",
                          "REDIS_URL": "redis://127.0.0.1:6390/2"})
    assert config.scaling is not None
    assert (config.scaling.mode, config.scaling.port, config.scaling.db) == ("standalone", 6390, 2)


def test_toml_table_and_environment_precedence(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('[scaling]\nenabled = true\nport = 6391\nprefix = "blue"\n'
                    '[[apps]]\nid = "1"\nkey = "k"\nsecret = "s"\n')
    config = load_config({}, str(path))
    assert config.scaling is not None
    assert (config.scaling.port, config.scaling.prefix) == (6391, "blue")
    config = load_config({"REVERB_SCALING_PREFIX": "green"}, str(path))
    assert config.scaling is not None and config.scaling.prefix == "green"


@pytest.mark.parametrize(("toml", "message"), [
    ("scaling = 3\n", "[scaling] in the config file must be a table"),
    ("[scaling]\nenabled = true\nport = 0\n", "[scaling] port must be between 1 and 65535"),
    ("[scaling]\nenabled = true\nbogus = 1\n", "unknown option(s) bogus"),
])
def test_scaling_mistakes_are_config_errors(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "b.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_config(APP, str(path))
    assert message in str(error.value)
