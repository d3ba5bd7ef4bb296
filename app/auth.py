"""Passwords (argon2), JWT bearer tokens, signed session cookies, and the request's user."""

from __future__ import annotations

import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

SESSION_COOKIE = "chat_session"
_JWT_ALGORITHM = "HS256"


class PasswordHashing:
    """Hashes and checks passwords with argon2id."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; never raises for a wrong or malformed hash."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


class TokenIssuer:
    """Issues and reads the two credentials every endpoint accepts: a JWT and a signed cookie."""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self._secret = secret_key
        self.ttl_seconds = ttl_seconds
        self._cookies = URLSafeTimedSerializer(secret_key, salt="chat-session")

    def issue_jwt(self, user_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds}
        return jwt.encode(claims, self._secret, algorithm=_JWT_ALGORITHM)

    def read_jwt(self, token: str) -> int | None:
        """The user id in a valid, unexpired token, else None."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[_JWT_ALGORITHM], options={"require": ["exp"]}
            )
            return int(claims["sub"])
        except (jwt.PyJWTError, KeyError, ValueError):
            return None

    def issue_cookie(self, user_id: int) -> str:
        return self._cookies.dumps({"uid": user_id})

    def read_cookie(self, value: str) -> int | None:
        """The user id in a valid cookie no older than the token lifetime, else None."""
        try:
            data = self._cookies.loads(value, max_age=self.ttl_seconds)
        except BadSignature:
            return None
        user_id = data.get("uid") if isinstance(data, dict) else None
        return user_id if isinstance(user_id, int) else None

    def user_id_from(self, request: Request) -> int | None:
        """The user id from `Authorization: Bearer` (preferred) or the session cookie."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.read_jwt(token.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.read_cookie(cookie) if cookie else None
