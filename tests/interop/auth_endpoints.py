"""Channel-authorization endpoints that sign with the real server SDKs, as an app backend would.

Both serve POST /broadcasting/auth (form-encoded socket_id and channel_name, as pusher-js sends
them) and POST /broadcasting/auth-wrong-secret (signed with another secret, so the broadcaster
must refuse the subscription), and POST /broadcasting/user-auth (user authentication for
`pusher.signin()`). The user is named by the X-User-Id / X-User-Name headers, and
X-User-Watchlist (comma-separated ids) sets the signed-in user's watchlist.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pusher

from tests.interop.node_process import NodeProcess
from tests.support.processes import Broadcaster

AUTH_PATH = "/broadcasting/auth"
WRONG_SECRET_AUTH_PATH = "/broadcasting/auth-wrong-secret"
USER_AUTH_PATH = "/broadcasting/user-auth"


class NpmAuthServer:
    """js/auth_server.mjs: signs with the npm `pusher` SDK's authorizeChannel."""

    def __init__(self, server: Broadcaster) -> None:
        self.process = NodeProcess(
            "auth_server.mjs",
            {"appId": server.app_id, "key": server.key, "secret": server.secret},
        )
        self.port = 0

    def start(self) -> NpmAuthServer:
        self.process.start()
        listening = self.process.wait_for(
            lambda line: line.get("kind") == "listening", "listening line"
        )
        self.port = int(listening["port"])
        return self

    def url(self, path: str = AUTH_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.process.stop()


def pypi_client(server: Broadcaster, secret: str | None = None) -> Any:
    """A PyPI `pusher.Pusher` aimed at `server` over plain HTTP (with another secret if given)."""
    return pusher.Pusher(
        app_id=server.app_id,
        key=server.key,
        secret=server.secret if secret is None else secret,
        ssl=False,
        host=server.host,
        port=server.port,
        timeout=10,
    )


class PypiAuthServer:
    """An http.server endpoint that signs with the PyPI `pusher` SDK's `authenticate`."""

    def __init__(self, server: Broadcaster) -> None:
        signers = {
            AUTH_PATH: pypi_client(server),
            WRONG_SECRET_AUTH_PATH: pypi_client(server, secret=f"not-{server.secret}"),
        }
        self.requests: list[dict[str, str]] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(signers, self.requests))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def start(self) -> PypiAuthServer:
        self._thread.start()
        return self

    def url(self, path: str = AUTH_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


def _handler_class(
    signers: dict[str, Any], requests: list[dict[str, str]]
) -> type[BaseHTTPRequestHandler]:
    class AuthHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            signer = signers.get(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            if self.path == USER_AUTH_PATH:
                self._authenticate_user(form)
                return
            socket_id = form.get("socket_id", [""])[0]
            channel = form.get("channel_name", [""])[0]
            user_id = self.headers.get("X-User-Id")
            if signer is None:
                self._answer(404, {"error": "not found"})
                return
            if not socket_id or not channel or not user_id:
                self._answer(403, {"error": "no user, socket_id or channel_name"})
                return
            user_data = None
            if channel.startswith("presence-"):
                name = self.headers.get("X-User-Name", user_id)
                user_data = {"user_id": user_id, "user_info": {"id": user_id, "name": name}}
            requests.append({"path": self.path, "channel": channel, "socket_id": socket_id})
            self._answer(200, signer.authenticate(channel, socket_id, user_data))

        def _authenticate_user(self, form: dict[str, list[str]]) -> None:
            socket_id = form.get("socket_id", [""])[0]
            user_id = self.headers.get("X-User-Id")
            if not socket_id or not user_id:
                self._answer(403, {"error": "no user or socket_id"})
                return
            user_data: dict[str, Any] = {"id": user_id,
                                         "name": self.headers.get("X-User-Name", user_id)}
            watchlist = self.headers.get("X-User-Watchlist")
            if watchlist:
                user_data["watchlist"] = watchlist.split(",")
            requests.append({"path": self.path, "socket_id": socket_id, "user_id": user_id})
            self._answer(200, signers[AUTH_PATH].authenticate_user(socket_id, user_data))

        def _answer(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output clean; failures show the client's transcript instead."""

    return AuthHandler
