"""Eager coroutine execution: synchronous when nothing waits, a Task otherwise."""

import asyncio

import pytest

from broadcaster.server.eager import run_eagerly


async def immediate() -> int:
    return 7


async def waits(event: asyncio.Event) -> int:
    await event.wait()
    return 8


async def fails_later(event: asyncio.Event) -> None:
    await event.wait()
    raise ValueError("late")


def test_finishes_synchronously_without_waiting() -> None:
    assert run_eagerly(immediate()) == (True, 7)


def test_hands_over_to_a_task_when_it_waits() -> None:
    async def scenario() -> None:
        event = asyncio.Event()
        done, task = run_eagerly(waits(event))
        assert not done and isinstance(task, asyncio.Task)
        event.set()
        assert await task == 8
        event2 = asyncio.Event()
        _, failing = run_eagerly(fails_later(event2))
        event2.set()
        assert isinstance(failing, asyncio.Task)
        with pytest.raises(ValueError, match="late"):
            await failing

    asyncio.run(scenario())


def test_errors_before_the_first_wait_propagate() -> None:
    async def broken() -> None:
        raise KeyError("now")

    with pytest.raises(KeyError):
        run_eagerly(broken())
