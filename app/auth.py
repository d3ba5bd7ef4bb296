"""Passwords (argon2), JWT bearer tokens, signed session cookies, and the request's user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

T = TypeVar("T")
SESSION_COOKIE = "chat_session"
_JWT_ALGORITHM = "HS256"


class HashingBusy(Exception):
    """Too many password hashes are already waiting; the caller answers 503 with Retry-After."""


class PasswordHashing:
    """Hashes and checks passwords with argon2id, at most `concurrency` at a time.

    Each argon2 hash takes tens of MB and a core for tens of ms, so the async methods run in
    worker threads behind a semaphore, and refuse (`HashingBusy`) once `max_waiting` callers
    queue: memory and CPU stay bounded however many sign-ins arrive at once.
    """

    def __init__(self, concurrency: int = 2, max_waiting: int = 32) -> None:
        self._hasher = PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        self._max_waiting = max_waiting
        self._waiting = 0

    def hash(self, password: str) -> str:
        """Hash now, in this thread (start-up seeding only; requests use `hash_async`)."""
        return self._hasher.hash(password)

    async def hash_async(self, password: str) -> str:
        return await self._bounded(lambda: self._hasher.hash(password))

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        """Like `verify`; with no hash (unknown email) it hashes anyway, so timing tells nothing."""
        if password_hash is None:
            await self.hash_async(password)
            return False
        return await self._bounded(lambda: self.verify(password_hash, password))

    async def _bounded(self, work: Callable[[], T]) -> T:
        if self._waiting >= self._max_waiting:
            raise HashingBusy
        self._waiting += 1
        try:
            async with self._slots:
                return await anyio.to_thread.run_sync(work)
        finally:
            self._waiting -= 1

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; never raises for a wrong or malformed hash."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class Credential:
    """Who a token or cookie names, and the user's token version it was issued under."""

    user_id: int
    version: int


class TokenIssuer:
    """Issues and reads the two credentials every endpoint accepts: a JWT and a signed cookie."""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self._secret = secret_key
        self.ttl_seconds = ttl_seconds
        self._cookies = URLSafeTimedSerializer(secret_key, salt="chat-session")

    def issue_jwt(self, user_id: int, version: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "ver": version, "iat": now, "exp": now + self.ttl_seconds}
        return jwt.encode(claims, self._secret, algorithm=_JWT_ALGORITHM)

    def read_jwt(self, token: str) -> Credential | None:
        """The credential in a valid, unexpired token, else None."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[_JWT_ALGORITHM],
                options={"require": ["exp", "sub", "ver"]},
            )
            version = claims["ver"]
            if not isinstance(version, int):
                return None
            return Credential(int(claims["sub"]), version)
        except (jwt.PyJWTError, KeyError, ValueError):
            return None

    def issue_cookie(self, user_id: int, version: int) -> str:
        return self._cookies.dumps({"uid": user_id, "ver": version})

    def read_cookie(self, value: str) -> Credential | None:
        """The credential in a valid cookie no older than the token lifetime, else None."""
        try:
            data = self._cookies.loads(value, max_age=self.ttl_seconds)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user_id, version = data.get("uid"), data.get("ver")
        if isinstance(user_id, int) and isinstance(version, int):
            return Credential(user_id, version)
        return None

    def credential_from(self, request: Request) -> Credential | None:
        """The credential from `Authorization: Bearer` (preferred) or the session cookie.

        It is only valid while its version equals the user's `token_version` (see logout).
        """
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.read_jwt(token.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.read_cookie(cookie) if cookie else None
