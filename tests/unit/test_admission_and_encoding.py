"""Admission of new sockets, socket ids, and the shared text/JSON helpers."""

import random
import re

import pytest

from broadcaster.protocol.admission import admission_refusal
from broadcaster.protocol.apps import App
from broadcaster.protocol.encoding import dump_json, parse_json, utf8_size_exceeds
from broadcaster.protocol.socket_ids import new_socket_id

APP = App(id="1", key="k", secret="s")


@pytest.mark.parametrize(
    ("app", "query", "origin", "accepting", "code"),
    [
        (None, "protocol=7", None, True, 4001),
        (App(id="1", key="k", secret="s", enabled=False), "protocol=7", None, True, 4003),
        (APP, "client=js", None, True, 4008),
        (APP, "protocol=99", None, True, 4007),
        (App(id="1", key="k", secret="s", allowed_origins=("good.test",)), "protocol=7",
         "https://evil.test", True, 4009),
        (APP, "protocol=7", None, False, 4200),
    ],
)
def test_refusals_carry_the_pusher_code(app: App | None, query: str, origin: str | None,
                                        accepting: bool, code: int) -> None:
    refusal = admission_refusal(app, query, origin, accepting)
    assert refusal is not None and refusal.code == code and refusal.close


@pytest.mark.parametrize("query", ["protocol=5", "protocol=6", "protocol=7&client=js"])
def test_supported_protocols_are_admitted(query: str) -> None:
    assert admission_refusal(APP, query, "https://any.test") is None


def test_unknown_app_is_reported_before_anything_else() -> None:
    refusal = admission_refusal(None, "", "https://evil.test", accepting=False)
    assert refusal is not None and refusal.code == 4001


def test_socket_ids_have_the_pusher_form_and_avoid_taken_ones() -> None:
    seeded = random.Random(7)
    first = new_socket_id(set(), random.Random(7))
    assert re.fullmatch(r"\d+\.\d+", first)
    # The same seed would give `first` again: taking it forces the next candidate.
    second = new_socket_id({first}, seeded)
    assert second != first and re.fullmatch(r"\d+\.\d+", second)


def test_utf8_size_counts_bytes_not_characters() -> None:
    assert not utf8_size_exceeds("a" * 10, 10)
    assert utf8_size_exceeds("a" * 11, 10)
    assert utf8_size_exceeds("é" * 6, 10)  # 12 bytes
    assert not utf8_size_exceeds("é" * 5, 10)
    assert utf8_size_exceeds("😀" * 3, 11)  # 12 bytes in 3 characters


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 50_000, "{", b"\xff"])
def test_parse_json_turns_every_failure_into_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(text)


def test_dump_json_refuses_values_nested_too_deeply() -> None:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(ValueError):
        dump_json(value)
    assert dump_json({"a": [1, "x"]}) == '{"a":[1,"x"]}'
