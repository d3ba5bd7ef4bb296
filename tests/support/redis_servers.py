"""Real Redis servers for tests: standalone, master + replica + 3 Sentinels, a 3-master Cluster.

Every server runs `redis-server` on a free loopback port with its files in a temporary directory,
without persistence, and is always stopped by the context managers. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.support.processes import free_port, stop_process

REDIS_SERVER = shutil.which("redis-server") or "redis-server"
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
SERVICE = "mymaster"


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll `check` until it is true; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(step)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error: {last!r})")


def cluster_port(tries: int = 200) -> int:
    """A free port at most 55535 whose cluster bus port (+10000) is free too."""
    for _ in range(tries):
        port = random.randint(20000, 55535)
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (port, port + 10000):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class RedisServer:
    """One `redis-server` (or Sentinel) process; `stop` and `start` keep the same port."""

    directory: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    sentinel: bool = False
    tls_ca: Path | None = None  # set: the port speaks TLS only, with a certificate from this CA
    password: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not running"
        return self.proc.pid

    def client(self, **kwargs: Any) -> redis.Redis:
        if self.tls_ca is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls_ca))
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2,
                           socket_connect_timeout=2, password=self.password, **kwargs)

    def _argv(self) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        common = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.directory}",
                  f"logfile {self.directory / 'redis.log'}", "protected-mode no"]
        if self.sentinel:
            # Sentinel rewrites its configuration file, so it needs one of its own.
            conf = self.directory / "sentinel.conf"
            if not conf.exists():
                conf.write_text("\n".join([*common, *self.args]) + "\n")
            return [REDIS_SERVER, str(conf), "--sentinel"]
        if self.tls_ca is not None:
            folder = self.tls_ca.parent
            common[0] = "port 0"
            common += [f"tls-port {self.port}", f"tls-cert-file {folder / 'server.crt'}",
                       f"tls-key-file {folder / 'server.key'}", f"tls-ca-cert-file {self.tls_ca}",
                       "tls-auth-clients no"]
        if self.password is not None:
            common.append(f"requirepass {self.password}")
        argv = [REDIS_SERVER, "--save", "", "--appendonly", "no"]
        for line in (*common, *self.args):
            name, *values = line.split()
            argv += [f"--{name}", *values]
        return argv

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start (again, same port) and wait until it answers PING."""
        self.proc = subprocess.Popen(self._argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} exited: {self.log()[-2000:]}")
            with self.client() as client:
                return bool(client.ping())

        wait_until(answers, timeout, f"redis on port {self.port} answering")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGKILL for a crash) and wait for it to exit."""
        stop_process(self.proc, sig)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open but nothing answers, as when a
        machine vanishes from the network."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def standalone(directory: Path) -> Iterator[RedisServer]:
    """One standalone Redis for the duration of the block."""
    server = RedisServer(directory / "standalone")
    try:
        yield server.start()
    finally:
        server.stop()


def make_certificates(directory: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it; returns the CA file
    (server.crt and server.key lie beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (directory / name for name in (
        "ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    san = directory / "san.ext"
    san.write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=test-ca", "-keyout", str(ca_key), "-out", str(ca)],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(csr)],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(san), "-out", str(crt)],
    ]
    for step in steps:
        subprocess.run(step, check=True, capture_output=True, timeout=30)
    return ca


@contextlib.contextmanager
def tls_standalone(directory: Path, password: str) -> Iterator[RedisServer]:
    """One standalone Redis speaking only TLS and requiring `password`."""
    ca = make_certificates(directory / "certs")
    server = RedisServer(directory / "tls", tls_ca=ca, password=password)
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass
class SentinelGroup:
    """A master, one replica and three Sentinels (quorum 2) watching service `mymaster`."""

    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def master_port(self) -> int:
        """The master's port according to the first Sentinel that answers."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError, OSError), sentinel.client() as client:
                reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                return int(reply[1])
        raise RuntimeError("no Sentinel answered")

    def fail_over(self, timeout: float = 20.0, *, kill: bool = True) -> RedisServer:
        """Kill the current master (or, with `kill=False`, ask a Sentinel for a failover while
        it keeps running) and wait until every Sentinel names the other server as master and
        it accepts writes; returns the new master."""
        old = self.master if self.master_port() == self.master.port else self.replica
        new = self.replica if old is self.master else self.master
        if kill:
            old.kill()
        else:
            with self.sentinels[0].client() as client:
                client.execute_command("SENTINEL", "FAILOVER", SERVICE)

        def promoted() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                    ports.add(int(reply[1]))
            with new.client() as client:
                role = client.execute_command("ROLE")[0]
            return ports == {new.port} and role in (b"master", "master")

        wait_until(promoted, timeout, "Sentinel failover", step=0.2)
        return new


@contextlib.contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    """Start master, replica and 3 Sentinels; wait until all know each other."""
    master = RedisServer(directory / "master")
    replica = RedisServer(directory / "replica", args=(f"replicaof 127.0.0.1 {master.port}",))
    monitor = (f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2",
               f"sentinel down-after-milliseconds {SERVICE} 1000",
               f"sentinel failover-timeout {SERVICE} 4000",
               f"sentinel parallel-syncs {SERVICE} 1")
    sentinels = [RedisServer(directory / f"sentinel{i}", args=monitor, sentinel=True)
                 for i in range(3)]
    group = SentinelGroup(master, replica, sentinels)
    started: list[RedisServer] = []
    try:
        for server in (master, replica, *sentinels):
            server.start()
            started.append(server)

        def ready() -> bool:
            with replica.client() as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
            for sentinel in sentinels:
                with sentinel.client() as client:
                    info = client.sentinel_master(SERVICE)
                    if int(info["num-slaves"]) < 1 or int(info["num-other-sentinels"]) < 2:
                        return False
            return True

        wait_until(ready, 20.0, "Sentinels discovering the replica and each other", step=0.2)
        yield group
    finally:
        for server in reversed(started):
            server.stop()


@dataclass
class RedisClusterGroup:
    """Three masters (no replicas) covering all 16384 slots."""

    nodes: list[RedisServer]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    def owner_port(self, slot: int) -> int:
        """The port of the master serving `slot`."""
        with self.nodes[0].client() as client:
            for first, last, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(first) <= slot <= int(last):
                    return int(master[1])
        raise RuntimeError(f"slot {slot} is not served")

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Wait until every running node reports `cluster_state:ok` and serves all 3 ranges."""

        def ok() -> bool:
            for node in self.nodes:
                with node.client() as client:
                    info = client.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or len(
                            client.execute_command("CLUSTER", "SLOTS")) != 3:
                        return False
            return True

        wait_until(ok, timeout, "cluster_state:ok on every node", step=0.1)


@contextlib.contextmanager
def redis_cluster(directory: Path) -> Iterator[RedisClusterGroup]:
    """Start 3 cluster-enabled servers, create the cluster and wait for `cluster_state:ok`."""
    nodes = [RedisServer(directory / f"node{i}", port=cluster_port(),
                         args=("cluster-enabled yes", "cluster-config-file nodes.conf",
                               "cluster-node-timeout 2000"))
             for i in range(3)]
    started: list[RedisServer] = []
    try:
        for node in nodes:
            node.start()
            started.append(node)
        subprocess.run([REDIS_CLI, "--cluster", "create", *(n.address for n in nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        group = RedisClusterGroup(nodes)
        group.wait_ok()
        yield group
    finally:
        for node in reversed(started):
            node.stop()
