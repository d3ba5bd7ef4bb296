"""A real nginx (started here, on a free port, with a generated config) in front of two nodes
under the path prefix /realtime: a client on each node through nginx, a publish through nginx."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.integration.scaling.conftest import running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import drain
from tests.support.api_client import signed_query
from tests.support.processes import free_port, wait_for_http
from tests.support.pusher_client import PusherTestClient
from tests.support.redis_servers import standalone

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PREFIX = "/realtime"

# The same shape as docs/deployment.md, with the paths of a throw-away directory.
CONFIG = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}

    upstream broadcaster_ws {{
        least_conn;
        {servers}
    }}
    upstream broadcaster_api {{
        {servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/app/ {{
            proxy_pass http://broadcaster_ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
        location {prefix}/ {{
            proxy_pass http://broadcaster_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""


@contextmanager
def running_nginx(directory: Path, upstream_ports: list[int]) -> Iterator[int]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n        ".join(f"server 127.0.0.1:{p};" for p in upstream_ports)
    conf = directory / "nginx.conf"
    conf.write_text(CONFIG.format(dir=directory, servers=servers, port=port, prefix=PREFIX))
    proc = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}{PREFIX}/up", proc=proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_two_nodes_behind_nginx(tmp_path: Path) -> None:
    with standalone(tmp_path / "redis") as redis:
        env = scaling_env(redis, prefix="nginx", REVERB_SERVER_PATH=PREFIX)
        with running_nodes(tmp_path, 2, env) as nodes, \
                running_nginx(tmp_path / "nginx", [s.port for s in nodes.servers]) as port:
            server = nodes[0]
            url = f"ws://127.0.0.1:{port}{PREFIX}/app/{server.key}?protocol=7&client=py"
            clients = [PusherTestClient(url), PusherTestClient(url)]
            for client in clients:
                await client.open()
                await client.subscribe("through-nginx")
            # least_conn put one WebSocket on each node.
            with redis.client() as direct:
                per_node = direct.hvals(f"nginx:{{{server.app_id}}}:conns")
            assert sorted(int(n) for n in per_node) == [1, 1]
            path = f"{PREFIX}/apps/{server.app_id}/events"
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for n in range(5):  # over the kept-alive upstream connections
                    body = json.dumps({"name": "via-nginx", "channel": "through-nginx",
                                       "data": json.dumps({"n": n})}).encode()
                    query = signed_query(server.key, server.secret, "POST", path, body)
                    response = await http.post(f"{path}?{query}", content=body)
                    assert response.status_code == 200, response.text
            for client in clients:
                events = await drain(client, "via-nginx", 5)
                assert [json.loads(e["data"])["n"] for e in events] == list(range(5))
            await asyncio.gather(*(client.close() for client in clients))
