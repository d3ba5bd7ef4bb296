"""`broadcaster serve`: parse flags, build the configuration, run the server until signalled."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import ssl
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from broadcaster.config import Config, ConfigError, load_config
from broadcaster.logs import configure_logging
from broadcaster.protocol.apps import AppRegistry
from broadcaster.server.event_loop import loop_factory
from broadcaster.server.metrics import MetricsServer
from broadcaster.server.node import BroadcastServer
from broadcaster.workers import run_workers, worker_index

if TYPE_CHECKING:
    from broadcaster.hub.redis_hub import RedisHub

log = logging.getLogger("broadcaster")

# File descriptors kept back from the connection estimate: listening sockets, logs, the metrics
# port, scrapes and outgoing webhook requests.
RESERVED_FILES = 64


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broadcaster",
                                     description="Pusher protocol v7 server (Reverb compatible)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the WebSocket + HTTP API server")
    serve.add_argument("--host", help="interface to bind (default 0.0.0.0, env REVERB_SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080, env REVERB_SERVER_PORT)")
    serve.add_argument("--config", metavar="FILE", default=os.environ.get("BROADCASTER_CONFIG"),
                       help="TOML file with [server] and [[apps]] (env BROADCASTER_CONFIG)")
    serve.add_argument("--debug", action="store_true", help="log every frame")
    serve.add_argument("--path", help="path prefix for every route, e.g. /ws "
                       "(env REVERB_SERVER_PATH)")
    serve.add_argument("--tls-cert", metavar="PEM", help="certificate chain: serve wss and "
                       "https on the port (env BROADCASTER_TLS_CERT)")
    serve.add_argument("--tls-key", metavar="PEM", help="private key (env BROADCASTER_TLS_KEY)")
    serve.add_argument("--metrics-port", type=int, help="Prometheus /metrics, /up and /ready "
                       "(default 9601, env BROADCASTER_METRICS_PORT)")
    serve.add_argument("--metrics-host", help="interface for the metrics port (default: --host, "
                       "env BROADCASTER_METRICS_HOST)")
    serve.add_argument("--no-metrics", dest="metrics", action="store_const", const=False,
                       help="do not open the metrics port (env BROADCASTER_METRICS=false)")
    serve.add_argument("--shutdown-grace", type=float, metavar="SECONDS",
                       help="on SIGTERM, time to close clients and flush webhooks "
                       "(default 5, env BROADCASTER_SHUTDOWN_GRACE)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run N processes on the port (SO_REUSEPORT), one node each; "
                       "needs scaling over Redis when N > 1 (docs/scaling.md)")
    return parser


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each connection is a file); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard not in (resource.RLIM_INFINITY, soft):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server TLS context from the configured PEM files; ConfigError if they do not load."""
    if not config.tls_cert or not config.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"tls_cert/tls_key: cannot load {config.tls_cert} with "
                          f"{config.tls_key}: {exc}") from None
    return context


def _announce(config: Config, port: int, open_files: int, metrics_port: int | None,
              loop_name: str, node_id: str | None = None,
              worker: int | None = None) -> None:
    extra: dict[str, Any] = {
        "event_loop": loop_name,
        "host": config.host, "port": port, "apps": [app.id for app in config.apps],
        "scheme": "https/wss" if config.tls_cert else "http/ws",
        "open_files": open_files, "max_connections": max(0, open_files - RESERVED_FILES),
    }
    if config.path:
        extra["path"] = config.path
    if metrics_port is not None:
        extra["metrics"] = f"{config.metrics_host}:{metrics_port}"
    if config.scaling is not None:
        scaling = config.scaling
        where = {"standalone": f"{scaling.host}:{scaling.port}",
                 "sentinel": f"sentinel {scaling.sentinel_master}",
                 "cluster": "cluster"}[scaling.mode]
        extra["scaling"] = f"redis {where} prefix={scaling.prefix} node={node_id}"
    else:
        extra["scaling"] = "off (single node)"
    if worker is not None:
        extra["worker"] = worker
    log.info("listening", extra=extra)
    if config.development_app:
        app = config.apps[0]
        banner = (
            "\n" + "!" * 72 + "\n"
            "  No app configured (set REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET\n"
            "  or pass --config FILE). Serving a DEVELOPMENT app with throw-away credentials:\n"
            f"    app id:     {app.id}\n    app key:    {app.key}\n    app secret: {app.secret}\n"
            + "!" * 72
        )
        print(banner, file=sys.stderr, flush=True)


async def _serve(config: Config, loop_name: str = "asyncio",
                 worker: int | None = None) -> None:
    open_files = raise_open_files_limit()
    hub = await _redis_hub(config) if config.scaling is not None else None
    server = BroadcastServer(AppRegistry(list(config.apps)), limits=config.limits,
                             debug=config.debug, ssl_context=tls_context(config),
                             path_prefix=config.path, hub=hub, reuse_port=worker is not None)
    try:
        await server.start(config.host, config.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    metrics: MetricsServer | None = None
    if config.metrics:
        metrics = MetricsServer(server)
        try:
            await metrics.start(config.metrics_host, config.metrics_port)
        except OSError as exc:
            await server.shutdown(0)
            raise ConfigError(f"cannot listen on {config.metrics_host}:{config.metrics_port} for "
                              f"metrics: {exc.strerror} (set --metrics-port, or --no-metrics)"
                              ) from None
    _announce(config, server.port, open_files, metrics.port if metrics else None, loop_name,
              None if hub is None else hub.node_id, worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra={"grace": config.shutdown_grace})
    await server.shutdown(config.shutdown_grace)
    if hub is not None:
        await hub.close()
    if metrics is not None:
        await metrics.close()


async def _redis_hub(config: Config) -> RedisHub:
    """The hub of a node in a cluster, connecting (or retrying in the background) to Redis."""
    from broadcaster.server.websocket import encode_text_frame

    try:
        from broadcaster.hub.redis_hub import RedisHub  # the redis package is an optional extra
    except ImportError as exc:
        raise ConfigError(f"scaling is enabled but the redis package is missing ({exc}): "
                          "pip install 'pusher-broadcaster[redis]'") from None

    assert config.scaling is not None
    hub = RedisHub(config.scaling, config.apps, encode_text_frame)
    if not await hub.start():
        scaling = config.scaling
        log.error("redis unreachable at start; serving this node's clients alone and retrying "
                  "in the background", extra={"mode": scaling.mode, "host": scaling.host,
                                              "port": scaling.port, "node_id": hub.node_id})
    return hub


def _check_workers(config: Config, workers: int) -> None:
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if config.scaling is None:
        raise ConfigError(f"--workers {workers} needs scaling over Redis: each worker is a node "
                          "of a cluster and they meet in Redis. Set REVERB_SCALING_ENABLED=true "
                          "and REDIS_URL (or REDIS_HOST/REDIS_PORT), or a [scaling] table; see "
                          "docs/scaling.md")
    if config.port == 0:
        raise ConfigError("--workers needs a fixed port (not 0): the workers share it")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `broadcaster` command; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(args.debug)
    options = {name: getattr(args, name) for name in
               ("path", "tls_cert", "tls_key", "metrics", "metrics_port", "metrics_host",
                "shutdown_grace")}
    try:
        config = load_config(os.environ, args.config, host=args.host, port=args.port,
                             debug=args.debug, options=options)
        if args.workers != 1:
            _check_workers(config, args.workers)
            return run_workers(list(argv if argv is not None else sys.argv[1:]), args.workers,
                               config.shutdown_grace)
        worker = worker_index()
        if worker is not None and config.metrics and config.metrics_port:
            config = replace(config, metrics_port=config.metrics_port + worker)
        factory, loop_name = loop_factory(os.environ)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(config, loop_name, worker))
    except ConfigError as exc:
        print(f"broadcaster: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
