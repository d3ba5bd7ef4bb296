"""Prometheus metrics, health and readiness, scraped over HTTP from a real broadcaster."""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api_client import ApiClient
from tests.support.processes import REPO_ROOT, Broadcaster, free_port, wait_for_http
from tests.support.pusher_client import PusherTestClient


def scrape(server: Broadcaster) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics` by (name, sorted labels)."""
    response = httpx.get(f"{server.metrics_url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


async def test_metrics_count_connections_messages_and_requests(broadcaster: Broadcaster) -> None:
    app = (("app", broadcaster.app_id),)
    api = ApiClient(broadcaster.base_url, broadcaster.app_id, broadcaster.key, broadcaster.secret)
    try:
        async with PusherTestClient(broadcaster.ws_url) as one, \
                PusherTestClient(broadcaster.ws_url) as two:
            await one.subscribe("metrics-a")
            await two.subscribe("metrics-a")
            await two.subscribe("metrics-b")
            before = scrape(broadcaster)
            assert before["broadcaster_connections", app] == 2
            assert before["broadcaster_subscriptions", app] == 3
            assert before["broadcaster_channels", app] == 2
            assert before["broadcaster_websocket_messages_received_total", ()] == 3
            # two connection_established + three subscription_succeeded
            assert before["broadcaster_websocket_messages_sent_total", ()] == 5
            assert api.trigger("metrics-a", "hello", {"n": 1}).status_code == 200
            await one.expect("hello")
            await two.expect("hello")
            assert api.request("GET", "channels/metrics-a").status_code == 200
            after = scrape(broadcaster)
        assert after["broadcaster_websocket_messages_sent_total", ()] == 7  # one event, twice
        sent = (after["broadcaster_websocket_sent_bytes_total", ()]
                - before["broadcaster_websocket_sent_bytes_total", ()])
        assert 2 * len('{"event":"hello"') < sent < 400
        assert after["broadcaster_websocket_received_bytes_total", ()] > 0
        assert after["broadcaster_http_requests_total",
                     (("route", "events"), ("status", "200"))] == 1
        assert after["broadcaster_http_requests_total",
                     (("route", "channel"), ("status", "200"))] == 1
        assert after["broadcaster_ready", ()] == 1
        assert after["broadcaster_event_loop_lag_seconds", ()] >= 0
        assert after["process_open_fds", ()] > 0
        # Webhook counters appear only once a dispatcher with `stats` is wired in.
        assert all(not name.startswith("broadcaster_webhooks") for name, _ in after)
    finally:
        api.close()


def test_health_and_readiness_on_both_ports(broadcaster: Broadcaster) -> None:
    for base in (broadcaster.base_url, broadcaster.metrics_url):
        up = httpx.get(f"{base}/up", timeout=5)
        assert (up.status_code, up.json()) == (200, {"health": "OK"})
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert httpx.post(f"{broadcaster.metrics_url}/metrics", timeout=5).status_code == 405
    assert httpx.get(f"{broadcaster.metrics_url}/nope", timeout=5).status_code == 404
    unlabelled = scrape(broadcaster)
    assert unlabelled["broadcaster_http_requests_total",
                      (("route", "ready"), ("status", "200"))] == 1


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                         extra_env={"BROADCASTER_METRICS": "false"}).start()
    try:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", server.metrics_port)) != 0
        assert httpx.get(f"{server.base_url}/ready", timeout=5).status_code == 200
    finally:
        server.stop()
    assert "metrics=" not in server.log()


def test_metrics_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "broadcaster", "serve", "--host", "127.0.0.1",
             "--port", str(free_port()), "--metrics-port", str(metrics_port)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=20, check=False,
            env={"PATH": "/usr/bin:/bin", "REVERB_APP_ID": "1", "REVERB_APP_KEY": "k",
                 "REVERB_APP_SECRET": "s"})
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{metrics_port} for metrics" in result.stderr
    assert "--no-metrics" in result.stderr


def test_start_line_reports_the_open_files_limit(broadcaster: Broadcaster) -> None:
    line = next(line for line in broadcaster.log().splitlines() if 'msg="listening"' in line)
    assert "open_files=" in line and "max_connections=" in line
    assert f"metrics=\"127.0.0.1:{broadcaster.metrics_port}\"" in line


def _low_soft_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard != resource.RLIM_INFINITY and hard > 256, "the test needs a finite hard limit"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--no-metrics"], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
        preexec_fn=_low_soft_limit,  # noqa: PLW1509 - only lowers a resource limit
        env={"PATH": "/usr/bin:/bin", "REVERB_APP_ID": "1", "REVERB_APP_KEY": "k",
             "REVERB_APP_SECRET": "s"})
    try:
        wait_for_http(f"http://127.0.0.1:{port}/up", proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert f"open_files={hard} max_connections={hard - 64}" in stderr
