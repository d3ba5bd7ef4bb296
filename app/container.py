"""The long-lived objects one running app shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.auth import PasswordHashing, TokenIssuer
from app.config import Settings
from app.db import Database
from app.services.chat import ChatService
from app.services.publisher import PusherPublisher
from app.shared_state import Limit, SharedState


@dataclass(frozen=True)
class Limits:
    """The rate limits of the routes, counted in the shared state."""

    typing: Limit
    login: Limit
    login_address: Limit
    register: Limit
    message: Limit


@dataclass
class Services:
    settings: Settings
    db: Database
    passwords: PasswordHashing
    tokens: TokenIssuer
    publisher: PusherPublisher
    chat: ChatService
    state: SharedState
    limits: Limits


def services_of(request: Request) -> Services:
    """The app's shared services (set on `app.state.services` at start)."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services
