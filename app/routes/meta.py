"""Public facts the browser needs before signing in, and a health check."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.config import DEMO_MODEL_LABEL
from app.container import services_of


async def client_config(request: Request) -> Response:
    """How the browser reaches the broadcaster, the models on offer, and whether this is a demo."""
    settings = services_of(request).settings
    broadcaster = settings.broadcaster
    return JSONResponse({
        "broadcaster": {
            "key": broadcaster.key,
            "wsHost": broadcaster.host,
            "wsPort": broadcaster.port,
            "wssPort": broadcaster.port,
            "forceTLS": broadcaster.scheme == "https",
            "enabledTransports": ["ws", "wss"],
        },
        "auth_endpoint": "/broadcasting/auth",
        "models": list(settings.models),
        "default_model": settings.default_model,
        "demo_mode": settings.demo_mode,
        "demo_model_label": DEMO_MODEL_LABEL if settings.demo_mode else None,
    })


async def health(request: Request) -> Response:
    """Ready; `process` tells the processes serving one port apart, `shared_state` whether
    they share limits and cancels (`redis`) or each keeps its own (`memory`)."""
    services = services_of(request)
    stats = services.publisher.stats
    return JSONResponse({
        "health": "OK",
        "process": os.getpid(),
        "shared_state": "redis" if services.state.shared else "memory",
        "publisher": {"published": stats.published, "failed": stats.failed,
                      "retries": stats.retries, "requests": stats.requests,
                      "last_error": stats.last_error},
    })


routes = [
    Route("/api/config", client_config, methods=["GET"]),
    Route("/up", health, methods=["GET"]),
]
