"""Which asyncio event loop the server runs on: uvloop when it is installed (the optional
`speedups` extra), else the standard one; `BROADCASTER_EVENT_LOOP=asyncio` forces the standard
loop. uvloop moves the socket transports and the loop itself into C (libuv); everything else
behaves the same, so the server is tested on both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping


def loop_factory(env: Mapping[str, str]) -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """The factory for `asyncio.Runner` and the loop's name for the start-up log."""
    if env.get("BROADCASTER_EVENT_LOOP", "").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop, "uvloop"
    return asyncio.new_event_loop, "asyncio"
