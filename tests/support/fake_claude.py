"""A local stand-in for Claude's Messages API that streams scripted replies over real HTTP.

It speaks the streaming format of `POST /v1/messages` (server-sent events: `message_start`,
`content_block_delta` with `text_delta`, `message_delta`, `message_stop`) with chunked transfer
encoding, so the real `anthropic` SDK can be pointed at it through `ANTHROPIC_BASE_URL`.

Usage::

    with FakeClaude() as claude:                      # or claude = FakeClaude().start() ... stop()
        claude.set_default(Script(reply="Hi there", chunk_size=2, delay=0.01))
        claude.script(Script(error_status=529), match="please fail")
        ...  # point the app at claude.base_url
        claude.requests                               # JSON bodies received, in order
        claude.sent                                   # (perf_counter time, delta) as written

A `Script` chooses what one request gets:
- `reply`, split into deltas of `chunk_size` characters, each sent after `delay` seconds;
- `error_status`: answer with that HTTP status and an Anthropic-style JSON error instead;
- `drop_after`: send that many deltas, then cut the connection mid-body (no `message_stop`);
- `error_event_after`: send that many deltas, then an SSE `error` event (`overloaded_error`).
Scripts registered with `match` apply to requests whose last user message contains that text;
other requests get the default script. Only loopback is served.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Script:
    """What the fake answers to one request (see the module docstring)."""

    reply: str = "Hello from the scripted model."
    chunk_size: int = 4
    delay: float = 0.0
    error_status: int | None = None
    drop_after: int | None = None
    error_event_after: int | None = None

    def deltas(self) -> list[str]:
        size = max(1, self.chunk_size)
        return [self.reply[i : i + size] for i in range(0, len(self.reply), size)]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        fake = self.server.fake
        script = fake.record(body, dict(self.headers.items()))
        if self.path.split("?")[0] != "/v1/messages":
            self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                         "message": "unknown path"}})
            return
        if script.error_status is not None:
            kind = _ERROR_TYPES.get(script.error_status, "api_error")
            self._json(script.error_status, {"type": "error", "error": {
                "type": kind, "message": f"scripted {kind}"}})
            return
        try:
            self._stream(body, script)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-reply (a cancelled reply does that); nothing to do.
            self.close_connection = True

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-should-retry", "false")
        self.end_headers()
        self.wfile.write(data)

    def _event(self, name: str, payload: dict[str, Any]) -> None:
        data = f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], script: Script) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        model = body.get("model", "claude-test")
        self._event("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}})
        self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})
        stop = self.server.fake.stopping
        for sent, delta in enumerate(script.deltas()):
            if sent == script.drop_after:
                self.close_connection = True
                return
            if sent == script.error_event_after:
                self._event("error", {"type": "error", "error": {
                    "type": "overloaded_error", "message": "Overloaded"}})
                self._end_chunks()
                return
            if script.delay and stop.wait(script.delay):
                self.close_connection = True
                return
            self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": delta}})
            self.server.fake.note_sent(delta)
        if script.drop_after is not None and script.drop_after >= len(script.deltas()):
            self.close_connection = True
            return
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}})
        self._event("message_stop", {"type": "message_stop"})
        self._end_chunks()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeClaude


class FakeClaude:
    """A scripted Messages API server on a free loopback port (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.Lock()
        self._default = Script()
        self._matched: list[tuple[str, Script]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.sent: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give the SDK (`ANTHROPIC_BASE_URL`); the API lives at `/v1/messages`."""
        if self._server is None:
            raise RuntimeError("FakeClaude is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeClaude:
        self.stopping.clear()
        self._server = _Server(self._address, _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; streams still running end at their next delay."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeClaude:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def set_default(self, script: Script) -> None:
        """The script for requests that no `match` applies to."""
        with self._lock:
            self._default = script

    def script(self, script: Script, match: str) -> None:
        """Use `script` for requests whose last user message contains `match` (latest wins)."""
        with self._lock:
            self._matched.insert(0, (match, script))

    def reset(self) -> None:
        """Forget scripts and recorded requests."""
        with self._lock:
            self._default = Script()
            self._matched.clear()
            self.requests.clear()
            self.headers.clear()
            self.sent.clear()

    def record(self, body: dict[str, Any], headers: dict[str, str]) -> Script:
        """Store a received request and choose its script (called by the request handler)."""
        text = _last_user_text(body)
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            return next((s for m, s in self._matched if m in text), self._default)

    def note_sent(self, delta: str) -> None:
        """Record when a delta was written (`time.perf_counter()`), for latency measurements."""
        with self._lock:
            self.sent.append((time.perf_counter(), delta))

    def requests_matching(self, text: str) -> list[dict[str, Any]]:
        """Recorded request bodies whose last user message contains `text`."""
        with self._lock:
            return [body for body in self.requests if text in _last_user_text(body)]
