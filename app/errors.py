"""API errors: one exception type turned into a JSON body with the right status code."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """An error the client should see: `status` and a JSON body `{"error": message, ...extra}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def unauthenticated() -> ApiError:
    return ApiError(401, "Unauthenticated.")


def forbidden() -> ApiError:
    return ApiError(403, "This action is unauthorized.")


def not_found(what: str = "Resource") -> ApiError:
    return ApiError(404, f"{what} not found.")


def validation_failed(errors: dict[str, list[str]]) -> ApiError:
    """422 with Laravel's shape: a summary message and the messages of each field."""
    first = next(iter(errors.values()))[0] if errors else "The given data was invalid."
    return ApiError(422, first, extra={"message": first, "errors": errors})


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message, **exc.extra}, exc.status, headers=exc.headers)


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": exc.detail}, exc.status_code, headers=dict(exc.headers or {})
    )


async def shared_state_error_handler(_request: Request, exc: Exception) -> Response:
    """The store the processes share did not answer: nothing was done, try again shortly."""
    import logging

    logging.getLogger("app").warning("shared state unavailable: %s", exc)
    return JSONResponse({"error": "The server is busy; try again shortly."}, 503,
                        headers={"Retry-After": "2"})


async def unexpected_error_handler(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "Internal server error."}, 500)
