"""Socket ids: the `123.456` form Pusher clients and server SDKs validate."""

from __future__ import annotations

import random
from collections.abc import Container

# Socket ids identify connections; they are not secrets (every channel authorization is an HMAC
# with the app secret), so a fast generator seeded from the OS will do.
_ids = random.Random()


def new_socket_id(taken: Container[str], rng: random.Random = _ids) -> str:
    """A socket id matching `^\\d+\\.\\d+$` that is not in `taken` (unique on this node)."""
    while True:
        socket_id = f"{rng.randrange(10**9)}.{rng.randrange(10**9)}"
        if socket_id not in taken:
            return socket_id
