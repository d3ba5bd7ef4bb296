"""Run the Node scripts in tests/interop/js as subprocesses that speak JSON lines."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

INTEROP_DIR = Path(__file__).resolve().parent
SCRIPTS_DIR = INTEROP_DIR / "js"
NODE_MODULES = INTEROP_DIR / "node_modules"
REQUIRED_PACKAGES = ("pusher-js", "laravel-echo", "pusher")
DEFAULT_WAIT = 10.0

JsonObject = dict[str, Any]
LinePredicate = Callable[[JsonObject], bool]


def missing_node_setup() -> str | None:
    """Say what is missing to run the Node scripts (node itself or an npm package), or None."""
    if shutil.which("node") is None:
        return "`node` is not on PATH (Node 20 or later is needed)"
    for package in REQUIRED_PACKAGES:
        if not (NODE_MODULES / package / "package.json").is_file():
            return (
                f"{NODE_MODULES / package} is missing: install the interop dependencies with "
                "`make node-deps` (runs `npm ci` in tests/interop)"
            )
    return None


class NodeProcess:
    """One Node script: JSON config in argv, JSON-line commands on stdin, JSON lines on stdout.

    Every stdout line is kept in `lines` (in arrival order) so tests can wait for a line and,
    on failure, show everything the script saw.
    """

    def __init__(self, script: str, config: Mapping[str, Any]) -> None:
        self.script = script
        self.config = dict(config)
        self.lines: list[JsonObject] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self._next_id = 0
        self._proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    def start(self) -> NodeProcess:
        """Start the script; it keeps running until `stop()` or its own lifetime limit."""
        self._proc = subprocess.Popen(
            ["node", str(SCRIPTS_DIR / self.script), json.dumps(self.config)],
            cwd=INTEROP_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self._proc.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self._proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        return self

    def _read_stdout(self, stream: Any) -> None:
        for raw in stream:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                line = {"kind": "unparseable_output", "text": raw.rstrip("\n")}
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self, stream: Any) -> None:
        for raw in stream:
            with self._changed:
                self._stderr.append(raw)

    @property
    def exited(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None

    def wait_for(
        self, predicate: LinePredicate, what: str, timeout: float = DEFAULT_WAIT, start: int = 0
    ) -> JsonObject:
        """Return the first line at index >= `start` matching `predicate`.

        Fails the test, with the script's whole output, if none arrives within `timeout`
        seconds or the script exits first.
        """
        return self.wait_for_many(predicate, 1, what, timeout, start)[0]

    def wait_for_many(
        self,
        predicate: LinePredicate,
        count: int,
        what: str,
        timeout: float = DEFAULT_WAIT,
        start: int = 0,
    ) -> list[JsonObject]:
        """Return the first `count` lines at index >= `start` matching `predicate`, as wait_for."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines[start:] if predicate(line)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.exited:
                    break
                self._changed.wait(min(remaining, 0.2))
        raise AssertionError(f"{self.script}: no {what} within {timeout}s\n{self.transcript()}")

    def matching(self, predicate: LinePredicate) -> list[JsonObject]:
        """Every line seen so far that matches `predicate`."""
        with self._changed:
            return [line for line in self.lines if predicate(line)]

    def command(self, op: str, timeout: float = DEFAULT_WAIT, **fields: Any) -> Any:
        """Send one command and return the result of its `ack` (fails on `failed`)."""
        assert self._proc is not None and self._proc.stdin is not None, "not started"
        self._next_id += 1
        command_id = self._next_id
        self._proc.stdin.write(json.dumps({"id": command_id, "op": op, **fields}) + "\n")
        self._proc.stdin.flush()
        reply = self.wait_for(
            lambda line: line.get("kind") in ("ack", "failed") and line.get("id") == command_id,
            f"answer to {op}",
            timeout,
        )
        if reply["kind"] == "failed":
            raise AssertionError(f"{self.script}: {op} failed: {reply['error']}")
        return reply["result"]

    def transcript(self, limit: int = 200) -> str:
        """The last `limit` stdout lines and all of stderr, for failure messages."""
        with self._changed:
            out = [json.dumps(line) for line in self.lines[-limit:]]
            err = "".join(self._stderr)
        return "stdout:\n" + "\n".join(out) + "\nstderr:\n" + err

    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin (the script's cue to disconnect and exit), then kill it if it lingers."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)


def run_script(script: str, config: Mapping[str, Any], timeout: float = 30.0) -> list[JsonObject]:
    """Run a one-shot script to completion and return its JSON lines (fails on exit != 0)."""
    completed = subprocess.run(
        ["node", str(SCRIPTS_DIR / script), json.dumps(dict(config))],
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"{script} exited with {completed.returncode}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )
    return [json.loads(raw) for raw in completed.stdout.splitlines() if raw.strip()]
