"""Signatures that let a socket join a private or presence channel or sign in (Pusher's spec)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def _sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def private_auth(key: str, secret: str, socket_id: str, channel: str) -> dict[str, str]:
    """`{"auth": "key:HMAC(socket_id:channel)"}`."""
    return {"auth": f"{key}:{_sign(secret, f'{socket_id}:{channel}')}"}


def presence_auth(
    key: str, secret: str, socket_id: str, channel: str, user_id: int, user_info: dict[str, Any]
) -> dict[str, str]:
    """`{"auth", "channel_data"}`; the signature covers the exact channel_data string sent."""
    channel_data = json.dumps(
        {"user_id": user_id, "user_info": user_info}, separators=(",", ":")
    )
    signature = _sign(secret, f"{socket_id}:{channel}:{channel_data}")
    return {"auth": f"{key}:{signature}", "channel_data": channel_data}


def user_auth(
    key: str, secret: str, socket_id: str, user_id: int, user_info: dict[str, Any]
) -> dict[str, str]:
    """`{"auth", "user_data"}` for `pusher:signin`; user_data's `id` is a string, as required."""
    user_data = json.dumps({"id": str(user_id), "user_info": user_info}, separators=(",", ":"))
    signature = _sign(secret, f"{socket_id}::user::{user_data}")
    return {"auth": f"{key}:{signature}", "user_data": user_data}
