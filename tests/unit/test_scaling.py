"""Scaling configuration from Reverb's environment names and a TOML [scaling] table."""

from __future__ import annotations

import pytest

from broadcaster.config import ConfigError
from broadcaster.scaling import ScalingConfig, load_scaling

ON = {"REVERB_SCALING_ENABLED": "true"}


def test_off_by_default() -> None:
    assert load_scaling({}) is None
    assert load_scaling({"REVERB_SCALING_ENABLED": "false"}, {"enabled": True}) is None
    assert load_scaling({}, {"enabled": False, "host": "127.0.0.2"}) is None


def test_reverb_defaults() -> None:
    config = load_scaling(ON)
    assert config == ScalingConfig()
    assert (config.mode, config.channel, config.prefix) == ("standalone", "reverb", "reverb")
    assert (config.host, config.port, config.db, config.tls) == ("127.0.0.1", 6379, 0, False)
    assert config.partitions == 1
    assert config.key("nodes", "n1") == "reverb:nodes:n1"


def test_host_port_credentials_and_prefix_from_env() -> None:
    config = load_scaling({**ON, "REVERB_SCALING_CHANNEL": "shop", "REDIS_HOST": "127.0.0.5",
                           "REDIS_PORT": "6380", "REDIS_USERNAME": "u", "REDIS_PASSWORD": "hunter2",
                           "REDIS_DB": "3", "REDIS_TIMEOUT": "2.5"})
    assert config is not None
    assert (config.host, config.port, config.username, config.password) == (
        "127.0.0.5", 6380, "u", "hunter2")
    assert (config.db, config.timeout, config.prefix) == (3, 2.5, "shop")
    assert "hunter2" not in repr(config)


def test_url_wins_and_rediss_means_tls() -> None:
    config = load_scaling({**ON, "REDIS_URL": "rediss://us%40r:s3cret@127.0.0.9:6390/2",
                           "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1"})
    assert config is not None
    assert (config.host, config.port, config.db, config.tls) == ("127.0.0.9", 6390, 2, True)
    assert (config.username, config.password) == ("us@r", "s3cret")


def test_env_wins_over_table() -> None:
    config = load_scaling({**ON, "REVERB_SCALING_PREFIX": "blue"},
                          {"prefix": "green", "port": 7000, "channel": "c"})
    assert config is not None
    assert (config.prefix, config.port, config.channel) == ("blue", 7000, "c")


def test_sentinel_from_env() -> None:
    config = load_scaling({**ON, "REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.2:26380",
                           "REDIS_SENTINEL_MASTER": "main", "REDIS_SENTINEL_PASSWORD": "x"})
    assert config is not None
    assert config.mode == "sentinel"
    assert config.sentinels == (("127.0.0.1", 26379), ("127.0.0.2", 26380))
    assert (config.sentinel_master, config.sentinel_password) == ("main", "x")


def test_cluster_from_table_and_env() -> None:
    table = {"enabled": True, "cluster": True, "host": "127.0.0.3", "port": 7001}
    config = load_scaling({}, table)
    assert config is not None
    assert config.mode == "cluster"
    assert config.cluster_nodes == (("127.0.0.3", 7001),)
    assert config.partitions == 16
    nodes = load_scaling({**ON, "REDIS_CLUSTER_NODES": "127.0.0.1:7001,127.0.0.1:7002",
                          "REVERB_SCALING_PARTITIONS": "32"})
    assert nodes is not None
    assert nodes.cluster_nodes == (("127.0.0.1", 7001), ("127.0.0.1", 7002))
    assert nodes.partitions == 32


@pytest.mark.parametrize(("env", "table", "named"), [
    ({"REDIS_PORT": "70000"}, {}, "REDIS_PORT"),
    ({"REDIS_PORT": "abc"}, {}, "REDIS_PORT"),
    ({}, {"port": True}, "[scaling] port"),
    ({"REDIS_DB": "-1"}, {}, "REDIS_DB"),
    ({"REDIS_TIMEOUT": "0"}, {}, "REDIS_TIMEOUT"),
    ({"REDIS_URL": "http://127.0.0.1"}, {}, "REDIS_URL"),
    ({"REDIS_URL": "redis://127.0.0.1/x"}, {}, "REDIS_URL"),
    ({"REDIS_SENTINELS": "127.0.0.1"}, {}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "127.0.0.1:1", "REDIS_CLUSTER": "true"}, {}, "REDIS_SENTINELS"),
    ({"REDIS_CLUSTER": "true", "REDIS_DB": "1"}, {}, "REDIS_DB"),
    ({"REVERB_SCALING_PREFIX": "has space"}, {}, "REVERB_SCALING_PREFIX"),
    ({"REVERB_SCALING_PARTITIONS": "0"}, {}, "REVERB_SCALING_PARTITIONS"),
    ({"REDIS_TLS": "maybe"}, {}, "REDIS_TLS"),
    ({}, {"hots": "127.0.0.1"}, "hots"),
    ({}, {"sentinels": 5}, "[scaling] sentinels"),
])
def test_errors_name_the_setting(env: dict[str, str], table: dict[str, object],
                                 named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_scaling({**ON, **env}, table)


def test_invalid_enabled_is_an_error() -> None:
    with pytest.raises(ConfigError, match="REVERB_SCALING_ENABLED"):
        load_scaling({"REVERB_SCALING_ENABLED": "perhaps"})


def test_passwords_are_taken_as_written() -> None:
    config = load_scaling({**ON, "REDIS_PASSWORD": " pass word ",
                           "REDIS_SENTINELS": "127.0.0.1:26379",
                           "REDIS_SENTINEL_PASSWORD": "s p "})
    assert config is not None
    assert (config.password, config.sentinel_password) == (" pass word ", "s p ")
