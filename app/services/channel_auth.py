"""Signatures that let a socket join a private or presence channel or sign in (Pusher's spec).

The HMAC itself is the broadcaster's (`broadcaster.protocol.signatures`): one implementation
signs what the other verifies.
"""

from __future__ import annotations

import json
from typing import Any

from broadcaster.protocol import signatures


def private_auth(key: str, secret: str, socket_id: str, channel: str) -> dict[str, str]:
    """`{"auth": "key:HMAC(socket_id:channel)"}`."""
    return {"auth": signatures.channel_auth(key, secret, socket_id, channel)}


def presence_auth(
    key: str, secret: str, socket_id: str, channel: str, user_id: int, user_info: dict[str, Any]
) -> dict[str, str]:
    """`{"auth", "channel_data"}`; the signature covers the exact channel_data string sent."""
    channel_data = json.dumps(
        {"user_id": user_id, "user_info": user_info}, separators=(",", ":")
    )
    auth = signatures.channel_auth(key, secret, socket_id, channel, channel_data)
    return {"auth": auth, "channel_data": channel_data}


def user_auth(
    key: str, secret: str, socket_id: str, user_id: int, user_info: dict[str, Any]
) -> dict[str, str]:
    """`{"auth", "user_data"}` for `pusher:signin`; user_data's `id` is a string, as required."""
    user_data = json.dumps({"id": str(user_id), "user_info": user_info}, separators=(",", ":"))
    return {"auth": signatures.user_auth(key, secret, socket_id, user_data),
            "user_data": user_data}
