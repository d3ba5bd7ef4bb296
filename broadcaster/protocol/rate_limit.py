"""Rate limits as pure state machines: the caller passes the time, nothing here reads a clock.

Two shapes, matching what each side of the server needs:

* `FixedWindow` counts attempts in windows of `decay_seconds`, as Laravel's `RateLimiter` does
  for Reverb's per-connection message limit (`max_attempts` per `decay_seconds`).
* `TokenBucket` allows a steady `rate` per second with bursts up to `burst`, and says how long to
  wait when empty: the HTTP API answers 429 with that as `Retry-After`.
"""

from __future__ import annotations

import math


class FixedWindow:
    """`max_attempts` per window of `decay_seconds`; the window starts at the first attempt."""

    __slots__ = ("_attempts", "_window_end", "decay_seconds", "max_attempts")

    def __init__(self, max_attempts: int, decay_seconds: float) -> None:
        if max_attempts < 1 or decay_seconds <= 0:
            raise ValueError("max_attempts must be >= 1 and decay_seconds > 0")
        self.max_attempts = max_attempts
        self.decay_seconds = decay_seconds
        self._attempts = 0
        self._window_end = -math.inf

    def hit(self, now: float) -> bool:
        """Count one attempt at time `now`; True if it is within the limit."""
        if now >= self._window_end:
            self._window_end = now + self.decay_seconds
            self._attempts = 0
        self._attempts += 1
        return self._attempts <= self.max_attempts

    def retry_after(self, now: float) -> float:
        """Seconds until the current window ends (0 when a new attempt would be allowed)."""
        if self._attempts < self.max_attempts:
            return 0.0
        return max(0.0, self._window_end - now)


class TokenBucket:
    """A steady `rate` of requests per second, bursts up to `burst` (default: one second's worth).

    The bucket starts full, so a quiet client can always send a burst.
    """

    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._updated: float | None = None

    def take(self, now: float) -> float:
        """Take one token at time `now`. Returns 0.0 if allowed, else the seconds to wait for one
        (nothing is taken then)."""
        if self._updated is not None and now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        if self._updated is None or now > self._updated:
            self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def retry_after_header(wait: float) -> str:
    """`Retry-After` takes whole seconds; round up so a client that obeys it is let in."""
    return str(max(1, math.ceil(wait)))
