"""TLS on the main port (wss + https) and the REVERB_SERVER_PATH prefix, with real clients."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pusher.errors
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.api_client import signed_query
from tests.support.processes import Broadcaster, ManagedProcess, free_port
from tests.support.pypi_pusher import sdk_client
from tests.support.tls import make_certificates


def _start(server: Broadcaster, ready_url: str) -> None:
    """Start `server`, waiting on `ready_url` (the plain metrics port when the main one is TLS)."""
    argv = [sys.executable, "-m", "broadcaster", "serve", "--host", server.host,
            "--port", str(server.port), *server.extra_args]
    server.process = ManagedProcess(argv, server.env(), ready_url=ready_url,
                                    log_path=server.log_path)
    server.process.start()


async def test_wss_and_https_on_one_port(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                         extra_args=["--tls-cert", str(certs.cert), "--tls-key", str(certs.key)])
    _start(server, f"{server.metrics_url}/up")
    context = certs.client_context()
    try:
        https = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(verify=context, timeout=5) as trusting:
            up = await trusting.get(f"{https}/up")
        assert (up.status_code, up.json()) == (200, {"health": "OK"})
        async with httpx.AsyncClient(timeout=5) as default:
            with pytest.raises(httpx.ConnectError):  # not trusted without the CA
                await default.get(f"{https}/up")
        url = f"wss://127.0.0.1:{server.port}/app/{server.key}?protocol=7"
        async with connect(url, ssl=context, compression=None, open_timeout=5) as ws:
            established = json.loads(await ws.recv())
            assert established["event"] == "pusher:connection_established"
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "tls"}}))
            assert json.loads(await ws.recv())["event"] == "pusher_internal:subscription_succeeded"
            sdk = sdk_client(server.app_id, server.key, server.secret, server.port, ca=certs.ca)
            sdk.trigger("tls", "secure", {"over": "https"})
            event = json.loads(await ws.recv())
            assert (event["event"], json.loads(event["data"])) == ("secure", {"over": "https"})
        # Plain HTTP on the TLS port is refused, not answered in clear text.
        async with httpx.AsyncClient(timeout=3) as plain_http:
            with pytest.raises(httpx.TransportError):
                await plain_http.get(f"http://127.0.0.1:{server.port}/up")
    finally:
        server.stop()


def test_unreadable_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                         extra_args=["--tls-cert", str(bogus), "--tls-key", str(bogus)])
    with pytest.raises(RuntimeError):
        _start(server, f"{server.metrics_url}/up")
    assert "configuration error: tls_cert/tls_key: cannot load" in server.log()


@pytest.fixture
def prefixed(tmp_path: Path) -> Broadcaster:
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                         extra_env={"REVERB_SERVER_PATH": "/realtime/"})
    _start(server, f"{server.base_url}/realtime/up")
    return server


async def test_path_prefix_for_websockets_and_the_sdk(prefixed: Broadcaster) -> None:
    server = prefixed
    try:
        base = f"ws://127.0.0.1:{server.port}"
        with pytest.raises(InvalidStatus):
            async with connect(f"{base}/app/{server.key}?protocol=7", open_timeout=5):
                pass
        url = f"{base}/realtime/app/{server.key}?protocol=7"
        async with connect(url, compression=None, open_timeout=5) as ws:
            assert json.loads(await ws.recv())["event"] == "pusher:connection_established"
            await ws.send(json.dumps({"event": "pusher:subscribe",
                                      "data": {"channel": "prefixed"}}))
            assert json.loads(await ws.recv())["event"] == "pusher_internal:subscription_succeeded"
            # The SDK signs /apps/... and sends /realtime/apps/... (pusher-http-php's behaviour).
            sdk = sdk_client(server.app_id, server.key, server.secret, server.port,
                             prefix="/realtime")
            sdk.trigger("prefixed", "via-sdk", {"n": 1})
            assert json.loads(await ws.recv())["event"] == "via-sdk"
            assert sdk.channel_info("prefixed")["occupied"] is True
            # A client that signs the full path it calls is accepted too.
            path = f"/realtime/apps/{server.app_id}/events"
            body = json.dumps({"name": "full-path", "channel": "prefixed", "data": "{}"}).encode()
            query = signed_query(server.key, server.secret, "POST", path, body)
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.post(f"{server.base_url}{path}?{query}", content=body)
            assert response.status_code == 200, response.text
            assert json.loads(await ws.recv())["event"] == "full-path"
        with pytest.raises(pusher.errors.PusherBadAuth):
            sdk_client(server.app_id, server.key, "wrong-secret", server.port,
                       prefix="/realtime").trigger("prefixed", "refused", {})
        # Routes outside the prefix are gone; the probes answer on both.
        plain = sdk_client(server.app_id, server.key, server.secret, server.port)
        with pytest.raises(pusher.errors.PusherError):
            plain.trigger("prefixed", "outside", {})
        async with httpx.AsyncClient(timeout=5) as http:
            for probe in ("/up", "/ready", "/realtime/up", "/realtime/ready"):
                assert (await http.get(f"{server.base_url}{probe}")).status_code == 200
            metrics = (await http.get(f"{server.metrics_url}/metrics")).text
        # Labelled by route inside the prefix; everything else outside it is "other".
        for sample in ('route="events",status="200"} 2.0', 'route="events",status="401"} 1.0',
                       'route="channel",status="200"} 1.0', 'route="other",status="404"} 2.0',
                       'route="ready",status="200"} 2.0'):
            assert f"broadcaster_http_requests_total{{{sample}" in metrics
    finally:
        server.stop()


def test_invalid_path_is_a_configuration_error(tmp_path: Path) -> None:
    server = Broadcaster(port=free_port(), log_path=tmp_path / "b.log",
                         extra_env={"REVERB_SERVER_PATH": "/a b?"})
    with pytest.raises(RuntimeError):
        server.start()
    assert "configuration error: path (REVERB_SERVER_PATH)" in server.log()
