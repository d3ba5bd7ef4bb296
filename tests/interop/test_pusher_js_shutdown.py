"""pusher-js through a rolling restart: 4200 from the stopping node, reconnect to the next one."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.interop.clients import JsClient
from tests.support.api_client import ApiClient
from tests.support.processes import Broadcaster, free_port


def test_pusher_js_reconnects_to_the_next_node_and_resubscribes(tmp_path: Path) -> None:
    port = free_port()
    first = Broadcaster(port=port, log_path=tmp_path / "first.log").start()
    client = JsClient(first)
    second: Broadcaster | None = None
    try:
        client.start()
        first_id = client.wait_connected()
        client.subscribed("rolling")
        mark = client.mark()
        assert first.process is not None and first.process.proc is not None
        first.process.proc.send_signal(signal.SIGTERM)
        error = client.wait_frame("pusher:error", mark)
        code = error["data"]["code"] if isinstance(error["data"], dict) else \
            json.loads(error["data"])["code"]
        assert code == 4200
        assert first.process.proc.wait(timeout=10) == 0
        # The next node takes over the address, as behind a load balancer.
        second = Broadcaster(port=port, log_path=tmp_path / "second.log").start()
        line = client.process.wait_for(
            lambda line: line.get("kind") == "state" and line.get("current") == "connected",
            "reconnected", 30, mark)
        assert line["socket_id"] != first_id
        client.wait_event("rolling", "pusher:subscription_succeeded", mark, 10)
        api = ApiClient(second.base_url, second.app_id, second.key, second.secret)
        try:
            assert api.trigger("rolling", "after-restart", {"ok": True}).status_code == 200
        finally:
            api.close()
        client.wait_event("rolling", "after-restart", mark, 10)
    finally:
        client.stop()
        first.stop()
        if second is not None:
            second.stop()
