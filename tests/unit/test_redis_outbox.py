"""The bus's bookkeeping of outgoing messages: who is answered when, and what is lost."""

from __future__ import annotations

import asyncio

from broadcaster.hub.redis_outbox import Outbox


async def test_callers_of_one_turn_are_answered_once_all_their_messages_came_back() -> None:
    out = Outbox(batch=512)
    waiter = out.waiter(deadline=10.0)
    out.add("t1", b"a", waiter)
    assert out.waiter(deadline=10.0) is waiter  # the same turn shares one count
    out.add("t2", b"b", waiter)
    first, second = waiter.join(), waiter.join()
    rounds = list(out.rounds())
    assert rounds == [[("t1", b"a"), ("t2", b"b")]]
    assert out.waiter(deadline=10.0) is not waiter  # written: the next turn counts anew
    out.came_back(out.mine["t1"])
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    out.came_back(out.mine["t2"])
    assert first.result() is True and second.result() is True


async def test_messages_of_publish_alone_are_tracked_but_answer_nobody() -> None:
    out = Outbox(batch=512)
    out.add("t", b"x", None)
    waiter = out.waiter(deadline=10.0)
    out.add("t", b"y", waiter)
    answer = waiter.join()
    list(out.rounds())
    out.came_back(out.mine["t"])  # b"x": not the caller's
    assert not answer.done()
    out.came_back(out.mine["t"])
    assert answer.result() is True


def test_rounds_are_cut_at_the_batch_size_and_acknowledged_in_order() -> None:
    out = Outbox(batch=2)
    for i in range(5):
        out.add("t", bytes([i]), None)
    rounds = list(out.rounds())
    assert [len(r) for r in rounds] == [2, 2, 1]
    tokens = [out.written(len(r), parts=2) for r in rounds]
    assert out.pending == 5
    out.acked(tokens[1])
    out.acked(tokens[1])  # the second round is complete, the first is not: nothing counted
    assert (out.pending, out.acknowledged) == (5, 0)
    out.acked(tokens[0])
    out.acked(tokens[0])
    assert (out.pending, out.acknowledged) == (1, 4)


async def test_a_lost_connection_answers_every_waiting_caller_false() -> None:
    out = Outbox(batch=512)
    waiter = out.waiter(deadline=1.0)
    out.add("t", b"a", waiter)
    answer = waiter.join()
    rounds = list(out.rounds())
    out.written(len(rounds[0]), parts=1)
    out.add("t", b"b", None)
    assert out.overdue(now=2.0) and not out.overdue(now=0.5)
    assert out.lose_all() == 2
    assert answer.result() is False
    assert out.pending == 0 and not out.mine and not out.overdue(now=2.0)
