"""Where a load script points: one server's address and app credentials, from the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A Pusher-protocol server on loopback and the app the benchmark uses on it."""

    host: str
    port: int
    app_id: str
    key: str
    secret: str
    pid: int | None  # the server process, to read its CPU time and memory; None if unknown
    label: str  # the server's name in summary lines


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --port, --app-id, --key, --secret and --server-pid (the host is always loopback)."""
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-id", default="100001")
    parser.add_argument("--key", default="app-key")
    parser.add_argument("--secret", default="app-secret")
    parser.add_argument("--server-pid", type=int, default=None,
                        help="server process id, for its CPU use and memory")
    parser.add_argument("--label", default="server", help="name printed in the summary line")


def target_from(args: argparse.Namespace) -> Target:
    """Build the Target from parsed arguments; only 127.0.0.1 is ever targeted."""
    return Target("127.0.0.1", args.port, args.app_id, args.key, args.secret, args.server_pid,
                  args.label)
