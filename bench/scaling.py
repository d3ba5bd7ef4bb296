"""`python -m bench.scaling`: what scaling out over Redis costs, one summary line per scenario.

Starts its own Redis and broadcaster processes on free loopback ports:

- `cpu`: server CPU per delivery (fan-out to `--subscribers`) and per published event (one
  subscriber, HTTP publishing as fast as the closed loop allows), in-process hub vs Redis hub
  (one node, scaling on). Target: the Redis path costs at most 1.2x.
- `throughput`: fan-out deliveries/s and HTTP-publish events/s with one node and with
  `--workers 2` (two nodes on one port), with Redis's and the load generator's CPU beside.
- `latency`: p50/p99 publish-to-receive at `--rate` events/s to 100 subscribers: one node
  (in-process hub), and across nodes (subscribers on node A, publishing to node B). Both
  set-ups stay up and are measured in turns, `--repeat` times each; printed are the medians,
  the spread (min-max) of the runs, and the difference of each turn's pair (across minus one
  node, measured a few seconds apart) with its median and spread. Target: p99 within 2 ms.

The load generator (compiled sink + publisher) shares the machine's cores with the servers, so
read the CPU columns beside each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.fanout import ClosedLoopPublisher
from bench.latency import publish_at_rate
from bench.process_meter import own_cpu_seconds, process_cpu_seconds, raise_fd_limit
from bench.publisher import PublisherPool
from bench.sink_process import CONTROL_PAUSE, CONTROL_RECORD, Sink, Slot
from bench.summary import format_line
from bench.target import Target
from tests.support.processes import Broadcaster, free_port
from tests.support.redis_servers import RedisServer, standalone


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its direct children (the workers of `serve --workers`)."""
    total = process_cpu_seconds(pid)
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total += sum(process_cpu_seconds(int(child)) for child in children)
    return total


@dataclass
class Servers:
    """The broadcaster processes of one scenario, and Redis when scaling is on."""

    nodes: list[Broadcaster]
    redis: RedisServer | None

    def target(self, index: int, label: str) -> Target:
        node = self.nodes[index]
        assert node.process is not None and node.process.proc is not None
        return Target("127.0.0.1", node.port, node.app_id, node.key, node.secret,
                      node.process.proc.pid, label)

    def cpu(self) -> tuple[float, float]:
        """(CPU seconds of every broadcaster process, of Redis)."""
        servers = 0.0
        for node in self.nodes:
            assert node.process is not None and node.process.proc is not None
            servers += tree_cpu_seconds(node.process.proc.pid)
        redis = process_cpu_seconds(self.redis.pid) if self.redis is not None else 0.0
        return servers, redis


@contextlib.contextmanager
def servers(directory: Path, *, redis: bool, nodes: int = 1, workers: int = 1) -> Iterator[Servers]:
    directory = Path(tempfile.mkdtemp(prefix="run-", dir=directory))  # fresh logs per set-up
    with contextlib.ExitStack() as stack:
        server: RedisServer | None = None
        env = {"BROADCASTER_METRICS": "false", "REVERB_APP_MAX_MESSAGE_SIZE": "100000"}
        if redis:
            server = stack.enter_context(standalone(directory / "redis"))
            env |= {"REVERB_SCALING_ENABLED": "true", "REDIS_PORT": str(server.port),
                    "REVERB_SCALING_PREFIX": "bench"}
        args = ["--workers", str(workers)] if workers > 1 else []
        started = [Broadcaster(port=free_port(), log_path=directory / f"node{i}.log",
                               extra_env=dict(env), extra_args=args) for i in range(nodes)]
        for node in started:
            node.start()
            stack.callback(node.stop)
        if workers > 1:
            await_workers(started[0], workers)
        yield Servers(started, server)


def await_workers(node: Broadcaster, workers: int) -> None:
    """Wait (at most 20 s) until every worker logged that it listens."""
    deadline = time.monotonic() + 20
    while node.log().count('msg="listening"') < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not all start")
        time.sleep(0.1)


async def fan_out(group: Servers, subscribers: int, seconds: float, *, publish_to: int = 0,
                  window: int = 0) -> dict[str, float]:
    """Closed-loop HTTP publishing to `subscribers` on node 0; rates and CPU use."""
    sink = Sink(group.target(0, "sink"), "bench-scaling", subscribers, max_seconds=seconds + 120)
    count, problems = await sink.subscribed()
    pool = PublisherPool(group.target(publish_to, "publisher"), "bench-scaling", 8)
    window = window or max(4, 20000 // max(count, 1))
    publisher = ClosedLoopPublisher(pool, sink, max(count, 1), window)
    running = asyncio.create_task(publisher.run(8, seconds + 2.0))
    await asyncio.sleep(2.0)  # warm-up
    events0, sink0, own0 = sink.read(Slot.EVENTS), sink.cpu_seconds(), own_cpu_seconds()
    servers0, redis0 = group.cpu()
    sent0, wall0 = pool.stats.sent, time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - wall0
    events1, sink1, own1 = sink.read(Slot.EVENTS), sink.cpu_seconds(), own_cpu_seconds()
    servers1, redis1 = group.cpu()
    sent = pool.stats.sent - sent0
    await running
    sink.stop()
    pool.close()
    if publisher.stalled or problems:
        raise RuntimeError(f"fan-out run not clean: stalled={publisher.stalled} {problems}")
    deliveries = events1 - events0
    return {
        "subscribers": count,
        "deliveries_per_s": deliveries / elapsed,
        "events_per_s": sent / elapsed,
        "server_cpu": 100 * (servers1 - servers0) / elapsed,
        "redis_cpu": 100 * (redis1 - redis0) / elapsed,
        "loadgen_cpu": 100 * ((sink1 - sink0) + (own1 - own0)) / elapsed,
        "us_per_delivery": 1e6 * (servers1 - servers0) / max(deliveries, 1),
        "us_per_event": 1e6 * (servers1 - servers0) / max(sent, 1),
    }


async def latency(group: Servers, subscribers: int, rate: float, seconds: float,
                  publish_to: int) -> dict[str, float]:
    sink = Sink(group.target(0, "sink"), "bench-latency", subscribers, max_seconds=seconds + 120)
    count, problems = await sink.subscribed()
    pool = PublisherPool(group.target(publish_to, "publisher"), "bench-latency", 4)
    await publish_at_rate(pool, rate, 1.0)
    await asyncio.sleep(0.5)
    sink.set_control(CONTROL_RECORD)
    skipped = await publish_at_rate(pool, rate, seconds)
    await asyncio.sleep(1.0)
    sink.set_control(CONTROL_PAUSE)
    result = sink.stop()
    pool.close()
    if problems:
        raise RuntimeError(f"latency run not clean: {problems}")
    return {"subscribers": count, "p50_ms": result.number("p50_us") / 1000,
            "p90_ms": result.number("p90_us") / 1000, "p99_ms": result.number("p99_us") / 1000,
            "samples": result.number("latency_samples"), "publisher_skipped": skipped}


def _rounded(fields: dict[str, float | str]) -> dict[str, object]:
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in fields.items()}


async def run(args: argparse.Namespace, directory: Path) -> None:
    if "cpu" in args.scenarios:
        figures: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
        for hub in ("memory", "redis"):
            with servers(directory, redis=hub == "redis") as group:
                fan = await fan_out(group, args.subscribers, args.seconds)
                one = await fan_out(group, 1, args.seconds, window=16)
            figures[hub] = (fan, one)
            print(format_line(f"scaling_cpu hub={hub}", _rounded({
                "us_per_delivery": fan["us_per_delivery"],
                "deliveries_per_s": fan["deliveries_per_s"],
                "us_per_published_event": one["us_per_event"],
                "publish_events_per_s": one["events_per_s"],
                "server_cpu": fan["server_cpu"], "redis_cpu": fan["redis_cpu"],
                "loadgen_cpu": fan["loadgen_cpu"]})), flush=True)
        ratio_delivery = figures["redis"][0]["us_per_delivery"] / figures["memory"][0][
            "us_per_delivery"]
        ratio_event = figures["redis"][1]["us_per_event"] / figures["memory"][1]["us_per_event"]
        print(format_line("scaling_cpu_ratio redis/memory", _rounded({
            "per_delivery": ratio_delivery, "per_published_event": ratio_event,
            "target": 1.2})), flush=True)
    if "throughput" in args.scenarios:
        for workers in (1, 2):
            with servers(directory, redis=True, workers=workers) as group:
                fan = await fan_out(group, args.subscribers, args.seconds)
                one = await fan_out(group, 1, args.seconds, window=16)
            print(format_line(f"scaling_throughput nodes={workers}", _rounded({
                "fanout_deliveries_per_s": fan["deliveries_per_s"],
                "fanout_server_cpu": fan["server_cpu"], "fanout_redis_cpu": fan["redis_cpu"],
                "fanout_loadgen_cpu": fan["loadgen_cpu"],
                "publish_events_per_s": one["events_per_s"],
                "publish_server_cpu": one["server_cpu"], "publish_redis_cpu": one["redis_cpu"],
                "publish_loadgen_cpu": one["loadgen_cpu"]})), flush=True)
    if "latency" in args.scenarios:
        await latency_turns(args, directory)


async def latency_turns(args: argparse.Namespace, directory: Path) -> None:
    """Both set-ups stay up and are measured in turns, `--repeat` times each, the first of each
    pair alternating: on a shared machine the load changes from one minute to the next, and
    turns spread it evenly over both."""
    runs: dict[str, list[dict[str, float]]] = {"one_node": [], "across_nodes": []}
    with servers(directory, redis=False) as single, \
            servers(directory, redis=True, nodes=2) as pair:
        for turn in range(args.repeat):
            order = [("one_node", single, 0), ("across_nodes", pair, 1)]
            for name, group, publish_to in order[::-1] if turn % 2 else order:
                runs[name].append(
                    await latency(group, 100, args.rate, args.seconds, publish_to=publish_to))
    for name, measured in runs.items():
        fields: dict[str, float | str] = {"rate": args.rate, "runs": len(measured)}
        for key in measured[0]:
            fields[key] = statistics.median(run[key] for run in measured)
        for key in ("p50_ms", "p90_ms", "p99_ms"):
            fields[f"{key}_spread"] = _spread([run[key] for run in measured])
        fields["p99_ms_each"] = "/".join(f"{run['p99_ms']:.1f}" for run in measured)
        print(format_line(f"scaling_latency {name}", _rounded(fields)), flush=True)
    pairs = list(zip(runs["one_node"], runs["across_nodes"], strict=True))
    difference: dict[str, float | str] = {}
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        each = [across[key] - one[key] for one, across in pairs]
        difference[key] = statistics.median(across[key] for _, across in pairs) - \
            statistics.median(one[key] for one, _ in pairs)
        difference[f"{key}_paired_median"] = statistics.median(each)
        difference[f"{key}_paired_spread"] = _spread(each)
    difference["target_ms"] = 2.0
    print(format_line("scaling_latency_difference", _rounded(difference)), flush=True)


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="cpu, throughput and/or latency (default: all three)")
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--repeat", type=int, default=7, help="latency runs per set-up")
    args = parser.parse_args()
    known = ("cpu", "throughput", "latency")
    args.scenarios = args.scenarios or list(known)
    if any(name not in known for name in args.scenarios):
        parser.error(f"scenarios are {', '.join(known)}")
    raise_fd_limit(args.subscribers * 2 + 1024)
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as directory:
        asyncio.run(run(args, Path(directory)))



if __name__ == "__main__":
    main()
