"""Starting the app: configuration checks, the offline demo, the seeded account, the served UI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.app.client import ApiUser, Listener
from tests.support.app_server import app_env, running_app
from tests.support.processes import REPO_ROOT, Broadcaster, free_port


def _start_and_fail(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--port", str(free_port())],
        env={**os.environ, **env}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
        check=False,
    )


def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env = app_env(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}")
    env.update(APP_ENV="production", APP_SECRET_KEY="")
    result = _start_and_fail(env)
    assert result.returncode == 2
    assert "APP_SECRET_KEY must be set when APP_ENV=production" in result.stderr
    env.update(APP_SECRET_KEY="x" * 40, REVERB_APP_SECRET="")
    result = _start_and_fail(env)
    assert result.returncode == 2 and "REVERB_APP_SECRET" in result.stderr


def test_invalid_settings_are_reported_by_name(tmp_path: Path) -> None:
    base = app_env(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}")
    for name, value in (("REVERB_PORT", "eighty"), ("APP_SECRET_KEY", "short"),
                        ("ANTHROPIC_MODEL", "gpt-4"), ("DATABASE_URL", "mysql://x")):
        result = _start_and_fail({**base, name: value})
        assert result.returncode == 2, name
        assert f"configuration error: {name}" in result.stderr, result.stderr


async def test_demo_mode_streams_a_labelled_reply_to_the_seeded_user(
    tmp_path: Path, broadcaster: Broadcaster
) -> None:
    with running_app(tmp_path, broadcaster=broadcaster,
                     extra_env={"APP_SEED_DEMO": "1", "APP_DEMO_TOKEN_DELAY_MS": "2"}) as app:
        async with httpx.AsyncClient(base_url=app.base_url, timeout=10) as http:
            config = (await http.get("/api/config")).json()
            assert config["demo_mode"] is True and "demo" in config["demo_model_label"].lower()
            assert config["broadcaster"] == {
                "key": broadcaster.key, "wsHost": "127.0.0.1", "wsPort": broadcaster.port,
                "wssPort": broadcaster.port, "forceTLS": False, "enabledTransports": ["ws", "wss"]}
            assert config["auth_endpoint"] == "/broadcasting/auth"
            assert config["default_model"] in config["models"]

            login = await http.post("/api/login", json={"email": "demo@example.com",
                                                        "password": "demo-password"})
            assert login.status_code == 200
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            rooms = (await http.get("/api/conversations", headers=headers)).json()["data"]
            assert [r["title"] for r in rooms] == ["Welcome"]
            user = ApiUser(http, login.json()["token"], login.json()["user"]["id"], "Demo",
                           "demo@example.com")
            listener = await Listener.open(broadcaster)
            await listener.subscribe(user, f"private-{rooms[0]['channel']}")
            posted = await http.post(f"/api/conversations/{rooms[0]['id']}/messages",
                                     json={"message": "Hello demo"}, headers=headers)
            reply_id = posted.json()["assistant_message"]["id"]
            final = await listener.completed(reply_id)
            assert final["status"] == "complete"
            assert "offline demo model" in final["content"] and "Hello demo" in final["content"]
            assert len(listener.chunks(reply_id)) > 1
            await listener.close()


async def test_the_ui_is_served_with_a_single_page_fallback(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    with running_app(tmp_path, extra_env={"APP_UI_DIST": str(dist)}) as app:
        async with httpx.AsyncClient(base_url=app.base_url) as http:
            page = await http.get("/")
            assert page.status_code == 200 and "npm ci &amp;&amp; npm run build" in page.text
            (dist / "assets").mkdir(parents=True)
            (dist / "index.html").write_text("<!doctype html><title>chat</title>")
            (dist / "assets" / "app-1234.js").write_text("console.log('hi')")
            (dist / "favicon.svg").write_text("<svg/>")
            (tmp_path / "secret.txt").write_text("outside")

            assert "<title>chat</title>" in (await http.get("/")).text
            asset = await http.get("/assets/app-1234.js")
            assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
            assert "immutable" in asset.headers["cache-control"]
            assert (await http.get("/favicon.svg")).text == "<svg/>"
            deep = await http.get("/conversations/12", headers={"accept": "text/html"})
            assert deep.status_code == 200 and "<title>chat</title>" in deep.text
            assert (await http.get("/assets/missing.js",
                                   headers={"accept": "text/html"})).status_code == 404
            api = await http.get("/api/unknown", headers={"accept": "text/html"})
            assert api.status_code == 404 and api.json() == {"error": "Not found."}
            escape = await http.get("/..%2Fsecret.txt")
            assert "outside" not in escape.text
