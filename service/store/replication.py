"""Acknowledging a write only once enough replicas hold it (Redis ``WAIT``).

Redis replicates asynchronously: a master that acknowledged a revocation and died a moment
later may take it with it, and the replica that replaces it would answer "valid" for a
revoked identity. So an issuance or status change runs its script and then ``WAIT``s, on the
same connection (``WAIT`` counts the replicas holding *that connection's* writes), for
``replicas`` acknowledgements. Too few in time: :class:`~service.errors.ChangeNotReplicated`,
a 503 that says the change may not have been kept; repeating it is safe.

A script that found nothing to change still writes (the status script rewrites a field with
its own value), so a repeat after a 503 waits for every earlier write on that master too,
the unconfirmed one included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from service.store.connection import translate_errors

__all__ = ["Replication"]


class Replication:
    def __init__(self, redis: aioredis.Redis, *, replicas: int = 0, timeout_ms: int = 1000) -> None:
        self._redis = redis
        #: Set once at start (service.store.inspection); 0 runs scripts as before, no WAIT.
        self.replicas = replicas
        self.timeout_ms = timeout_ms

    async def run(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> tuple[Any, bool]:
        """The script's result, and whether ``replicas`` replicas confirmed it in time."""
        async with translate_errors():
            if self.replicas <= 0:
                return await script(keys=keys, args=args), True
            source = script.script
            assert isinstance(source, str)  # the stores register their scripts as text
            if isinstance(self._redis, RedisCluster):
                await self._redis.initialize()
                node = self._redis.get_node_from_key(keys[0])
                pipe = self._redis.pipeline()
                pipe.eval(source, len(keys), *keys, *args)
                # Same node, same pipeline, so the same connection as the script's.
                pipe.execute_command("WAIT", self.replicas, self.timeout_ms, target_nodes=node)
            else:
                pipe = self._redis.pipeline(transaction=False)
                pipe.eval(source, len(keys), *keys, *args)
                pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            result, acknowledged = await pipe.execute()
        return result, int(acknowledged) >= self.replicas
