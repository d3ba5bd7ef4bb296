"""The broadcaster installs and runs without the chat app's dependencies."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.support.processes import REPO_ROOT

APP_ONLY = ("starlette", "uvicorn", "sqlmodel", "alembic", "jwt", "itsdangerous", "anthropic",
            "argon2", "psycopg", "multipart")

# Imports every broadcaster module with the app-only packages made unimportable.
_PROBE = f"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {APP_ONLY!r}:
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
import broadcaster
for module in pkgutil.walk_packages(broadcaster.__path__, 'broadcaster.'):
    importlib.import_module(module.name)
from broadcaster.cli import main
print('ok')
"""


def test_base_dependencies_are_the_broadcasters_only() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    for name in ("httptools", "websockets", "httpx", "prometheus-client"):
        assert name in base
    for name in ("starlette", "uvicorn", "sqlmodel", "anthropic", "psycopg"):
        assert name not in base
        assert any(name in requirement for requirement in project["optional-dependencies"]["app"])
    assert any(r.startswith("redis") for r in project["optional-dependencies"]["redis"])
    assert "pusher-broadcaster[app,redis,speedups]" in project["optional-dependencies"]["dev"]
    # uvloop is an optional speedup only: the server runs on the standard loop without it.
    assert "uvloop" not in base
    assert any("uvloop" in r for r in project["optional-dependencies"]["speedups"])


def test_broadcaster_imports_without_app_packages() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
