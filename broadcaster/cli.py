"""`broadcaster serve`: parse flags, build the configuration, run the server until signalled."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from broadcaster.config import Config, ConfigError, load_config
from broadcaster.logs import configure_logging
from broadcaster.protocol.apps import AppRegistry
from broadcaster.server.node import BroadcastServer

log = logging.getLogger("broadcaster")


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
    return parser


def _announce(config: Config, port: int) -> None:
    log.info("listening", extra={"host": config.host, "port": port,
                                 "apps": [app.id for app in config.apps]})
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


async def _serve(config: Config) -> None:
    server = BroadcastServer(AppRegistry(list(config.apps)), limits=config.limits,
                             debug=config.debug)
    try:
        await server.start(config.host, config.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    _announce(config, server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `broadcaster` command; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(args.debug)
    try:
        config = load_config(os.environ, args.config, host=args.host, port=args.port,
                             debug=args.debug)
        asyncio.run(_serve(config))
    except ConfigError as exc:
        print(f"broadcaster: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
