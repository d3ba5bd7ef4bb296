"""Presence rosters (first/last connection rules) and the liveness decision."""

from broadcaster.protocol.liveness import Liveness, check_liveness
from broadcaster.protocol.presence import Member, PresenceRoster


def test_first_connection_adds_last_connection_removes() -> None:
    roster = PresenceRoster()
    ann = Member("1", {"name": "Ann"})
    assert roster.add("s1", ann) is True
    assert roster.add("s2", ann) is False  # second tab: no member_added
    assert roster.add("s3", Member("2", None)) is True
    assert roster.user_count == 2
    assert roster.members() == {"1": {"name": "Ann"}, "2": None}
    assert roster.remove("s1", "1") is False  # one tab left
    assert roster.remove("s1", "1") is False  # unknown socket: no change
    assert roster.remove("s2", "1") is True
    assert roster.members() == {"2": None}
    assert roster.remove("s3", "2") is True
    assert not roster


def test_liveness() -> None:
    assert check_liveness(10, 0, False, 60, 30) is Liveness.ALIVE
    assert check_liveness(60, 0, False, 60, 30) is Liveness.PING
    assert check_liveness(70, 0, True, 60, 30) is Liveness.ALIVE
    assert check_liveness(90, 0, True, 60, 30) is Liveness.DEAD
    assert check_liveness(95, 0, False, 60, 30) is Liveness.PING  # never pinged: ping first
