"""Pure rules for sign-in, watchlists, cache channels and subscription counts."""

import json
from typing import Any

import pytest

from broadcaster.config import load_config
from broadcaster.protocol.apps import App
from broadcaster.protocol.channels import (
    ChannelKind,
    channel_kind,
    is_cache_channel,
    user_channel,
    user_of_channel,
)
from broadcaster.protocol.counts import count_update_due
from broadcaster.protocol.errors import SigninFailed, WatchlistTooLarge
from broadcaster.protocol.http_api import HttpError, cache_info, parse_info_query, user_id_problem
from broadcaster.protocol.signatures import user_auth, verify_user_auth
from broadcaster.protocol.users import MAX_WATCHLIST, parse_signin, signin_overdue

APP = App(id="1", key="278d425bdf160c739803", secret="7ad3773142a6692b25b8")
SOCKET = "1234.1234"


def signin(user_data: str, auth: str | None = None) -> Any:
    auth = user_auth(APP.key, APP.secret, SOCKET, user_data) if auth is None else auth
    return parse_signin(APP, SOCKET, auth, user_data)


def test_signin_signature_matches_the_documented_vector() -> None:
    expected = "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    assert verify_user_auth(APP.key, APP.secret, SOCKET, '{"id":"12345"}', f"{APP.key}:{expected}")
    user = signin('{"id":"12345"}', f"{APP.key}:{expected}")
    assert (user.id, user.user_data, user.watchlist) == ("12345", '{"id":"12345"}', ())


def test_signin_keeps_the_exact_user_data_and_dedups_the_watchlist() -> None:
    data = '{ "id": "7", "watchlist": ["1", "2", "1"], "name": "Ann" }'
    user = signin(data)
    assert user.user_data == data
    assert user.watchlist == ("1", "2")


@pytest.mark.parametrize("user_data", [
    "not json", "[]", '"7"', "{}", '{"id":7}', '{"id":""}', '{"id":null}',
    '{"id":"' + "x" * 129 + '"}', '{"id":"1","watchlist":"2"}', '{"id":"1","watchlist":[1]}',
    '{"id":"1","watchlist":[""]}', "[" * 5000,
])
def test_malformed_user_data_fails_signin_with_4009(user_data: str) -> None:
    with pytest.raises(SigninFailed) as caught:
        signin(user_data)
    assert caught.value.code == 4009 and caught.value.close


@pytest.mark.parametrize("auth", [None, "", "278d425bdf160c739803:00", "other:sig"])
def test_bad_or_missing_signature_fails_with_4009(auth: str | None) -> None:
    with pytest.raises(SigninFailed):
        parse_signin(APP, SOCKET, auth, '{"id":"1"}')
    with pytest.raises(SigninFailed):
        parse_signin(APP, SOCKET, user_auth(APP.key, APP.secret, SOCKET, '{"id":"1"}'), None)


def test_signature_for_another_socket_fails() -> None:
    auth = user_auth(APP.key, APP.secret, "9.9", '{"id":"1"}')
    with pytest.raises(SigninFailed):
        parse_signin(APP, SOCKET, auth, '{"id":"1"}')


def test_watchlist_limit_is_4302_and_keeps_the_socket() -> None:
    ok = json.dumps({"id": "1", "watchlist": [str(i) for i in range(MAX_WATCHLIST)]})
    assert len(signin(ok).watchlist) == MAX_WATCHLIST
    over = json.dumps({"id": "1", "watchlist": [str(i) for i in range(MAX_WATCHLIST + 1)]})
    with pytest.raises(WatchlistTooLarge) as caught:
        signin(over)
    assert caught.value.code == 4302 and not caught.value.close


def test_signin_timeout_is_off_by_default_and_closes_4009_when_set() -> None:
    assert signin_overdue(1e9, 0.0, False, None) is None
    assert signin_overdue(9.9, 0.0, False, 10) is None
    assert signin_overdue(20.0, 0.0, True, 10) is None
    error = signin_overdue(10.0, 0.0, False, 10)
    assert error is not None and error.code == 4009 and error.close


@pytest.mark.parametrize(("name", "kind"), [
    ("cache-x", ChannelKind.PUBLIC), ("private-cache-x", ChannelKind.PRIVATE),
    ("private-encrypted-cache-x", ChannelKind.ENCRYPTED),
    ("presence-cache-x", ChannelKind.PRESENCE),
])
def test_cache_channels_keep_their_kind(name: str, kind: ChannelKind) -> None:
    assert is_cache_channel(name)
    assert channel_kind(name) is kind


@pytest.mark.parametrize("name", ["cache", "xcache-x", "private-x-cache-y", "presence-x",
                                  "public-cache-x", "#server-to-user-1"])
def test_other_channels_are_not_cache_channels(name: str) -> None:
    assert not is_cache_channel(name)


def test_user_channel_names() -> None:
    assert user_channel("42") == "#server-to-user-42"
    assert user_of_channel("#server-to-user-42") == "42"
    assert user_of_channel("#server-to-user-") is None
    assert user_of_channel("server-to-user-42") is None


def test_subscription_count_throttle() -> None:
    assert count_update_due(100, 10.0, 10.1)  # at most 100: always
    assert count_update_due(101, None, 10.0)  # first announcement
    assert not count_update_due(101, 10.0, 14.9)
    assert count_update_due(5000, 10.0, 15.0)


def test_info_cache_is_for_one_cache_channel() -> None:
    assert parse_info_query({"info": "cache,subscription_count"}, "cache-x") == (
        "cache", "subscription_count")
    with pytest.raises(HttpError) as not_cache:
        parse_info_query({"info": "cache"}, "news")
    assert not_cache.value.status == 400
    with pytest.raises(HttpError):
        parse_info_query({"info": "cache"})  # not on the channel list


def test_cache_info_shape() -> None:
    text = '{"event":"price","channel":"cache-x","data":"{\\"p\\":1}"}'
    assert cache_info(text, 12.7) == {"event": "price", "data": '{"p":1}', "ttl": 12}
    assert cache_info(text, 0.2)["ttl"] == 1


def test_user_ids_in_paths() -> None:
    assert user_id_problem("42") is None
    assert user_id_problem("") is not None
    assert user_id_problem("x" * 129) is not None


def test_new_app_options_from_reverb_env() -> None:
    env = {"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}
    (default,) = load_config(env).apps
    assert (default.cache_ttl, default.subscription_count,
            default.user_authentication_timeout) == (1800, False, None)
    (app,) = load_config({**env, "REVERB_APP_CACHE_TTL": "60",
                          "REVERB_APP_SUBSCRIPTION_COUNT": "true",
                          "REVERB_APP_USER_AUTHENTICATION_TIMEOUT": "30"}).apps
    assert (app.cache_ttl, app.subscription_count, app.user_authentication_timeout) == (
        60, True, 30)
