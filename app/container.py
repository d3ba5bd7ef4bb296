"""The long-lived objects one running app shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app.auth import PasswordHashing, TokenIssuer
from app.config import Settings
from app.db import Database
from app.ratelimit import SlidingWindowLimiter
from app.services.chat import ChatService
from app.services.publisher import PusherPublisher


@dataclass
class Services:
    settings: Settings
    db: Database
    passwords: PasswordHashing
    tokens: TokenIssuer
    publisher: PusherPublisher
    chat: ChatService
    typing_limiter: SlidingWindowLimiter
    login_limiter: SlidingWindowLimiter
    login_address_limiter: SlidingWindowLimiter
    register_limiter: SlidingWindowLimiter
    message_limiter: SlidingWindowLimiter


def services_of(request: Request) -> Services:
    """The app's shared services (set on `app.state.services` at start)."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services
