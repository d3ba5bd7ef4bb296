"""A node that receives a bus message of a kind added by a newer version (a rolling upgrade)
skips it with one warning and keeps delivering everything else."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import redis

from tests.integration.scaling.conftest import running_nodes, scaling_env
from tests.integration.scaling.test_cross_node import drain
from tests.support.redis_servers import RedisServer


def envelope_of_kind(kind: int) -> bytes:
    """A well-formed envelope (version 1) of `kind`, built by hand as a newer node would."""
    origin, app_id, channel, text = b"newer-node", b"100001", b"orders", b'{"future":true}'
    header = struct.pack("!BBBHHB", 1, kind, len(origin), len(app_id), len(channel), 0)
    return header + origin + app_id + channel + text


async def test_unknown_kinds_are_skipped_with_one_warning(tmp_path: Path,
                                                          redis_server: RedisServer) -> None:
    with running_nodes(tmp_path, 2, scaling_env(redis_server)) as nodes:
        client = nodes.client(1)
        await client.open()
        await client.subscribe("orders")
        direct = redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
        topics = [str(name) for name in direct.pubsub_channels() if str(name).endswith(":bus")]
        assert len(topics) == 1, topics
        for kind in (200, 201):
            assert direct.publish(topics[0], envelope_of_kind(kind)) == 2  # both nodes listen
        direct.close()
        api = nodes.api(0)
        assert api.trigger("orders", "tick", {"n": 1}).status_code == 200
        api.close()
        [tick] = await drain(client, "tick", 1)
        assert json.loads(tick["data"]) == {"n": 1}
        await client.close()
        for index in range(len(nodes)):
            log = nodes[index].log()
            assert log.count("a kind this version does not know") == 1, log
            assert "bus message handler failed" not in log
