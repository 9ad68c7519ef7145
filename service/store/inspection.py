"""What Thiqa checks of its Redis at start: that it cannot silently lose status data.

* ``maxmemory-policy`` must be ``noeviction``. Any other policy lets Redis delete keys when
  memory runs short, and a status list, an allocation bitmap or a record deleted that way
  could turn a revoked credential back to valid or hand an index out twice. Thiqa refuses to
  start (:class:`StoreMisconfigured`); with ``noeviction`` a full Redis refuses writes
  instead, which Thiqa answers with 503.
* Without an append-only file, a restart loses every write since the last snapshot: a warning.
* How many replicas each master has decides the default of ``THIQA_REDIS_MIN_REPLICAS``.

Everything is read from ``INFO`` (managed services often disable ``CONFIG``); on a cluster,
from every master.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from service.store.connection import RedisTopology, translate_errors

__all__ = ["StoreFacts", "StoreMisconfigured", "check_store", "inspect_store"]

log = logging.getLogger("thiqa.store")


class StoreMisconfigured(RuntimeError):
    """Redis is set up so that it could lose status data; Thiqa will not start on it."""


@dataclass(frozen=True, slots=True)
class StoreFacts:
    #: Each master's maxmemory-policy.
    eviction_policies: frozenset[str]
    #: Whether every master keeps an append-only file.
    append_only: bool
    #: The fewest replicas any master has.
    fewest_replicas: int


async def _info_of_masters(redis: aioredis.Redis, section: str) -> list[dict[str, Any]]:
    if isinstance(redis, RedisCluster):
        per_node = await redis.info(section, target_nodes=RedisCluster.PRIMARIES)
        return list(per_node.values())
    return [await redis.info(section)]


async def inspect_store(redis: aioredis.Redis) -> StoreFacts:
    """Read the facts; StoreUnavailable when Redis cannot answer."""
    async with translate_errors():
        memory = await _info_of_masters(redis, "memory")
        persistence = await _info_of_masters(redis, "persistence")
        replication = await _info_of_masters(redis, "replication")
    return StoreFacts(
        eviction_policies=frozenset(str(m.get("maxmemory_policy", "")) for m in memory),
        append_only=all(int(p.get("aof_enabled", 0)) == 1 for p in persistence),
        fewest_replicas=min(int(r.get("connected_slaves", 0)) for r in replication),
    )


def check_store(facts: StoreFacts, topology: RedisTopology, min_replicas: int | None) -> int:
    """Refuse an evicting Redis, warn about one without an append-only file, and return the
    replicas every issuance and status change must wait for."""
    evicting = sorted(p for p in facts.eviction_policies if p != "noeviction")
    if evicting:
        raise StoreMisconfigured(
            f"Redis maxmemory-policy is {', '.join(evicting)}: it may evict status lists and "
            "records, and a lost status list must never read as valid. Set "
            "maxmemory-policy noeviction."
        )
    if not facts.append_only:
        log.warning(
            "Redis keeps no append-only file (appendonly no): a restart loses the writes "
            "since its last snapshot, revocations included. Set appendonly yes."
        )
    if min_replicas is not None:
        if min_replicas > facts.fewest_replicas:
            log.warning(
                "THIQA_REDIS_MIN_REPLICAS is %d but a master has %d replicas: issuances and "
                "status changes will answer 503 change_not_replicated",
                min_replicas,
                facts.fewest_replicas,
            )
        return min_replicas
    return 1 if topology.may_have_replicas and facts.fewest_replicas >= 1 else 0
