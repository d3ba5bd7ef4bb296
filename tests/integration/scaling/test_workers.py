"""`broadcaster serve --workers N`: processes sharing one port, each a node of the cluster."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from tests.integration.scaling.conftest import Nodes, running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import drain
from tests.support.processes import REPO_ROOT, free_port
from tests.support.redis_servers import RedisServer, standalone


def test_workers_without_scaling_are_refused() -> None:
    done = subprocess.run([sys.executable, "-m", "broadcaster", "serve", "--workers", "2",
                           "--port", str(free_port())], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=30, check=False,
                          env={"PATH": "/usr/bin:/bin", "REVERB_APP_ID": "1",
                               "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"})
    assert done.returncode == 2
    assert "--workers 2 needs scaling over Redis" in done.stderr
    assert "REVERB_SCALING_ENABLED" in done.stderr


def node_ids(redis: RedisServer, prefix: str, app_id: str) -> set[bytes]:
    with redis.client() as client:
        return set(client.hkeys(f"{prefix}:{{{app_id}}}:conns"))


async def test_two_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    with standalone(tmp_path / "redis") as redis:
        env = scaling_env(redis, prefix="workers", BROADCASTER_METRICS="false")
        with running_nodes(tmp_path, 1, env, ["--workers", "2"]) as nodes:
            await _exercise(nodes, redis)
            parent = nodes[0].process
            assert parent is not None and parent.proc is not None
            clients = [nodes.client(0) for _ in range(4)]
            for client in clients:
                await client.open()
            parent.proc.terminate()
            for client in clients:
                codes = []
                try:
                    for _ in range(3):
                        event = await client.next_event()
                        codes.append(json.loads(event["data"])["code"])
                except ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 4200
                assert codes == [4200]
            assert parent.proc.wait(timeout=20) == 0
        assert "workers stopped" in nodes[0].log()


async def _exercise(nodes: Nodes, redis: RedisServer) -> None:
    # `/up` answered as soon as one worker listened; the kernel only spreads connections over
    # the workers listening when they arrive.
    deadline = time.monotonic() + 20
    while nodes[0].log().count('msg="listening"') < 2:
        assert time.monotonic() < deadline, "the second worker never listened"
        await asyncio.sleep(0.05)
    clients = [nodes.client(0) for _ in range(12)]
    for client in clients:
        await client.open()
        await client.subscribe("spread")
    # The kernel spread the connections over both workers, each a node of its own.
    deadline = time.monotonic() + 5
    while len(node_ids(redis, "workers", nodes[0].app_id)) < 2:
        assert time.monotonic() < deadline, "connections did not reach two workers"
        await asyncio.sleep(0.05)
    api = nodes.api(0)
    for n in range(10):
        assert api.trigger("spread", "tick", {"n": n}).status_code == 200
    api.close()
    for client in clients:
        ticks = await drain(client, "tick", 10)
        assert [json.loads(e["data"])["n"] for e in ticks] == list(range(10))
    assert nodes.get(0, "channels/spread", info="subscription_count")[
        "subscription_count"] == 12
    for client in clients:
        await client.close()


_WITHOUT_REDIS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'redis':
            raise ImportError('No module named ' + repr(name))
        return None
sys.meta_path.insert(0, Block())
from broadcaster.cli import main
sys.exit(main(['serve', '--port', sys.argv[1], '--no-metrics']))
"""


def test_scaling_without_the_redis_package_is_a_clear_error() -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_REDIS, str(free_port())],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
                          check=False, env={"PATH": "/usr/bin:/bin", "REVERB_APP_ID": "1",
                                            "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
                                            "REVERB_SCALING_ENABLED": "true"})
    assert done.returncode == 2, done.stderr
    assert "pip install 'pusher-broadcaster[redis]'" in done.stderr
