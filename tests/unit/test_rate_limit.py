"""The pure rate limiters: windows, refills and the wait they report."""

from __future__ import annotations

import pytest

from broadcaster.protocol.rate_limit import FixedWindow, TokenBucket, retry_after_header


def test_fixed_window_allows_max_attempts_then_refuses_until_the_window_ends() -> None:
    window = FixedWindow(3, 60)
    assert [window.hit(100.0 + i) for i in range(5)] == [True, True, True, False, False]
    assert window.retry_after(104.0) == pytest.approx(56.0)
    assert not window.hit(159.9)
    assert window.hit(160.0)  # a new window started at 100 + 60
    assert window.retry_after(160.0) == 0.0


def test_fixed_window_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        FixedWindow(0, 60)
    with pytest.raises(ValueError):
        FixedWindow(1, 0)


def test_token_bucket_bursts_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=2)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(10.0) == 0.0
    wait = bucket.take(10.0)
    assert wait == pytest.approx(0.5)
    assert bucket.take(10.25) == pytest.approx(0.25)  # half a token came back
    assert bucket.take(10.5) == 0.0
    assert bucket.take(100.0) == 0.0  # refills, but never above the burst
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) > 0.0


def test_token_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(rate=1)
    assert bucket.take(5.0) == 0.0
    assert bucket.take(4.0) == pytest.approx(1.0)
    assert bucket.take(6.0) == 0.0


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(1.2) == "2"
