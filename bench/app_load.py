"""Chat app under load: K users, each with a reply streaming at the same time, one app process.

Starts a real broadcaster, the app (`python -m app serve`, SQLite) with the anthropic SDK pointed
at the local Messages-streaming stand-in, which streams `--deltas` text deltas `--delta-ms` apart
and stamps each with the time it was sent. K users register, each subscribes a WebSocket client to
its conversation's private channel through the app's `/broadcasting/auth`, then all K post at once.
A post the app sheds (429/503) is retried after its `Retry-After`, and one whose connection
dropped is retried at once with the same `Idempotency-Key` (counted as `transport_retries`), at
most `MAX_ATTEMPTS` times.
Prints one line:

    app_load replies=K completed=… intact=… shed=… p50_ms=… p99_ms=… app_cpu_percent=… …

- latency: from the stand-in sending a delta to the subscribed socket receiving the
  `message.chunk` that carries it (the 30 ms coalescing window included);
- completed: replies whose `message.completed` reached their subscriber with status complete;
- intact: of those, how many had chunks numbered 1..n in order adding up to the whole reply;
- app_cpu_percent: the app process's CPU over the posting-to-last-completion window (100 = one
  core); the broadcaster's and this process's (subscribers and stand-in) likewise, since on a
  small machine a saturated load generator, not the app, may be what the figure shows.

With `--workers N` (N > 1) the app runs `--workers N` on a Redis started for the run; CPU is
then that of all its processes, and `app_cpu_us_per_delta` (app CPU per delivered delta) compares
the efficiency of 1 and N processes.

With `--app-cpu C` the app's processes run on CPU C only and the rest of the run on the other
CPUs, so that one and several workers compare on equal terms on a small machine.

Run: .venv/bin/python -m bench.app_load [--replies 50] [--deltas 40] [--delta-ms 25] [--workers N]
     [--redis] [--app-cpu C]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.process_meter import (
    own_cpu_seconds,
    pin,
    process_cpu_seconds,
    raise_fd_limit,
    tree_cpu_seconds,
    tree_pids,
)
from bench.summary import format_line
from tests.app.client import ApiUser, Listener, register
from tests.support.app_server import running_app
from tests.support.fake_claude import FakeClaude, Script
from tests.support.processes import Broadcaster, running_broadcaster
from tests.support.redis_servers import standalone

MAX_ATTEMPTS = 20
TOKEN = "<{user:04d}:{index:03d}>"


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Room:
    """One user, their conversation, the socket subscribed to it, and the reply expected."""

    user: ApiUser
    conversation: dict[str, Any]
    listener: Listener
    prompt: str
    reply: str
    reply_id: int | None = None
    shed: int = 0
    transport_retries: int = 0


async def _prepare(http: httpx.AsyncClient, server: Broadcaster, claude: FakeClaude,
                   index: int, deltas: int, delta_ms: int) -> Room:
    user = await register(http, f"Load {index}")
    conversation = await user.new_conversation()
    listener = await Listener.open(server)
    await listener.subscribe(user, f"private-{conversation['channel']}")
    tokens = [TOKEN.format(user=index, index=i) for i in range(deltas)]
    prompt = f"load test {index} {time.time_ns()}"
    claude.script(Script(reply="".join(tokens), chunk_size=len(tokens[0]),
                         delay=delta_ms / 1000), match=prompt)
    return Room(user, conversation, listener, prompt, "".join(tokens))


async def _post(room: Room) -> None:
    """Post the room's prompt; a shed post waits its Retry-After and tries again (bounded)."""
    url = f"/api/conversations/{room.conversation['id']}/messages"
    key = {"Idempotency-Key": uuid.uuid4().hex}  # retries of a dropped request stay one turn
    for _ in range(MAX_ATTEMPTS):
        try:
            response = await room.user.post(url, {"message": room.prompt}, headers=key)
        except httpx.TransportError:
            room.transport_retries += 1
            continue
        if response.status_code == 202:
            room.reply_id = int(response.json()["assistant_message"]["id"])
            return
        if response.status_code not in (429, 503):
            raise RuntimeError(f"post failed: {response.status_code} {response.text[:200]}")
        room.shed += 1
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))


def _latencies(room: Room, sent_at: dict[str, float]) -> tuple[list[float], bool]:
    """Per-delta latencies of one reply, and whether its chunks arrived whole and in order."""
    assert room.reply_id is not None
    events = [e for e in room.listener.named("message.chunk")
              if e["data"]["message_id"] == room.reply_id]
    seqs = [e["data"]["seq"] for e in events]
    text = "".join(e["data"]["chunk"] for e in events)
    intact = seqs == list(range(1, len(seqs) + 1)) and text == room.reply
    ends, total = [], 0
    for event in events:
        total += len(event["data"]["chunk"])
        ends.append((total, event["received_at"]))
    latencies: list[float] = []
    size = len(TOKEN.format(user=0, index=0))
    for position in range(size, len(room.reply) + 1, size):
        token = room.reply[position - size : position]
        received = next((at for end, at in ends if end >= position), None)
        if received is not None and token in sent_at:
            latencies.append(received - sent_at[token])
    return latencies, intact


def _by_index(rooms_latencies: list[list[float]]) -> str:
    """Median latency (ms) per quarter of the replies' deltas: shows a start-up backlog."""
    width = max((len(lat) for lat in rooms_latencies), default=0)
    step = max(1, width // 4)
    parts = []
    for start in range(0, width, step):
        column = [lat[i] for lat in rooms_latencies
                  for i in range(start, min(len(lat), start + step))]
        parts.append(f"{_percentile(column, 0.5) * 1000:.0f}")
    return "/".join(parts)


def _cpu_of(server: Broadcaster) -> float:
    assert server.process is not None and server.process.proc is not None
    return process_cpu_seconds(server.process.proc.pid)


def _profiler(path: str, pid: int) -> subprocess.Popen[bytes]:
    """py-spy sampling the app (and its workers) from posting to the last completion."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--subprocesses",
                             "--nonblocking", "--rate", "250", "--format", "raw", "-o", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> str:
    raise_fd_limit()
    # The stand-in streams from one thread per reply in this process: with the default 5 ms
    # switch interval the subscribers' event loop would wait that long for the GIL at every
    # turn, and the figures would measure this process rather than the app.
    sys.setswitchinterval(0.0005)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        env = dict(args.env)
        if args.workers > 1 or args.redis:
            redis = stack.enter_context(standalone(Path(tmp)))
            env.setdefault("REDIS_URL", f"redis://127.0.0.1:{redis.port}/0")
        server = stack.enter_context(running_broadcaster(Path(tmp)))
        claude = stack.enter_context(FakeClaude())
        app = stack.enter_context(running_app(Path(tmp), broadcaster=server,
                                              claude_url=claude.base_url, extra_env=env,
                                              workers=args.workers))
        assert app.process is not None and app.process.proc is not None
        pid = app.process.proc.pid
        if args.app_cpu is not None:
            # The app's processes on one core, everything else (this process, the stand-in, the
            # broadcaster) on the others: the app's CPU per delta then does not depend on what
            # it shares a core with, so one and several workers compare on equal terms.
            others = set(os.sched_getaffinity(0)) - {args.app_cpu}
            pin(tree_pids(pid), {args.app_cpu})
            assert server.process is not None and server.process.proc is not None
            pin({os.getpid(), server.process.proc.pid}, others)
        # Idle connections are dropped before the app's 5 s keep-alive ends, never reused as it
        # closes them.
        limits = httpx.Limits(max_connections=args.replies + 10, keepalive_expiry=4)
        async with httpx.AsyncClient(base_url=app.base_url, timeout=120, limits=limits) as http:
            rooms: list[Room] = []
            for start in range(0, args.replies, 25):  # bounded batches of sign-ups
                rooms += await asyncio.gather(*(
                    _prepare(http, server, claude, i, args.deltas, args.delta_ms)
                    for i in range(start, min(start + 25, args.replies))))
            claude.sent.clear()
            profiler = _profiler(args.profile, pid) if args.profile else None
            cpu_before, started = tree_cpu_seconds(pid), time.monotonic()
            own_before, broadcaster_before = own_cpu_seconds(), _cpu_of(server)
            await asyncio.gather(*(_post(room) for room in rooms))

            async def completion(room: Room) -> dict[str, Any] | None:
                if room.reply_id is None:
                    return None
                try:
                    return await room.listener.completed(room.reply_id, timeout=args.timeout)
                except TimeoutError:
                    return None

            finals = await asyncio.gather(*(completion(room) for room in rooms))
            elapsed = time.monotonic() - started
            cpu = tree_cpu_seconds(pid) - cpu_before
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                profiler.wait(timeout=30)
            own = own_cpu_seconds() - own_before
            broadcaster_cpu = _cpu_of(server) - broadcaster_before
            sent_at = {delta: at for at, delta in claude.sent}
            latencies: list[float] = []
            per_room: list[list[float]] = []
            intact = 0
            for room, final in zip(rooms, finals, strict=True):
                if final is None or final["status"] != "complete":
                    continue
                room_latencies, whole = _latencies(room, sent_at)
                latencies += room_latencies
                per_room.append(room_latencies)
                intact += whole and final["content"] == room.reply
            for room in rooms:
                await room.listener.close()
    completed = sum(1 for f in finals if f is not None and f["status"] == "complete")
    return format_line("app_load", {
        "replies": args.replies,
        "completed": completed,
        "intact": intact,
        "shed": sum(room.shed for room in rooms),
        "transport_retries": sum(room.transport_retries for room in rooms),
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "deltas": len(latencies),
        "p50_by_quarter_ms": _by_index(per_room),
        "workers": args.workers,
        "shared_state": "redis" if args.workers > 1 or args.redis else "memory",
        "app_pinned_to_cpu": "-" if args.app_cpu is None else args.app_cpu,
        "app_cpu_percent": 100 * cpu / elapsed,
        "app_cpu_us_per_delta": 1e6 * cpu / max(1, len(latencies)),
        "broadcaster_cpu_percent": 100 * broadcaster_cpu / elapsed,
        # What the broadcaster spends per streamed delta, published as the app publishes them
        # (shared batch_events requests on a keep-alive pool), delivery to the subscriber included.
        "broadcaster_cpu_us_per_delta": 1e6 * broadcaster_cpu / max(1, len(latencies)),
        "loadgen_cpu_percent": 100 * own / elapsed,
        "seconds": elapsed,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=50)
    parser.add_argument("--deltas", type=int, default=40)
    parser.add_argument("--delta-ms", type=int, default=25)
    parser.add_argument("--workers", type=int, default=1,
                        help="app processes (above 1: on a Redis started for the run)")
    parser.add_argument("--redis", action="store_true",
                        help="share state through a Redis started for the run even with one "
                             "process (as --workers above 1 always does)")
    parser.add_argument("--app-cpu", type=int, metavar="CPU",
                        help="pin the app's processes to this CPU and the rest of the run to "
                             "the other CPUs")
    parser.add_argument("--profile", metavar="PATH",
                        help="write a py-spy profile (raw stacks) of the measured window")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each subscriber waits for its message.completed")
    parser.add_argument("--env", type=lambda pair: pair.split("=", 1), action="append",
                        default=[], help="NAME=VALUE for the app's environment (repeatable)")
    args = parser.parse_args()
    args.env = dict(args.env)
    print(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
