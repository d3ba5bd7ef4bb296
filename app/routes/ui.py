"""Serves the built browser UI (`echo_client_example/dist`), with `index.html` for app routes."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from app.container import services_of

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chat UI not built</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The chat UI is not built yet</h1>
<p>Build it once, then reload this page:</p>
<pre>cd echo_client_example &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>The API is running: try <a href="/api/config">/api/config</a>.</p>
</body></html>
"""


def _built_file(dist: Path, path: str) -> Path | None:
    """The file under `dist` that `path` names, refusing anything outside it."""
    relative = path.lstrip("/")
    if not relative:
        return None
    candidate = (dist / relative).resolve()
    root = dist.resolve()
    if root not in candidate.parents or not candidate.is_file():
        return None
    return candidate


async def spa(request: Request) -> Response:
    """Built files as they are; `index.html` for any other page a browser asks for.

    Unknown API paths and non-HTML requests get a JSON 404 instead of the page.
    """
    path = request.url.path
    if path.startswith(("/api/", "/broadcasting/")):
        return JSONResponse({"error": "Not found."}, 404)
    dist = services_of(request).settings.ui_dist
    built = _built_file(dist, path)
    if built is not None:
        immutable = path.startswith("/assets/")
        cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
        return FileResponse(built, headers={"cache-control": cache})
    wants_html = "text/html" in request.headers.get("accept", "")
    if path != "/" and (not wants_html or path.startswith("/assets/")):
        return JSONResponse({"error": "Not found."}, 404)
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT_PAGE)
    return FileResponse(index, headers={"cache-control": "no-cache"})


routes = [Route("/{path:path}", spa, methods=["GET", "HEAD"])]
