"""Issuances and status changes are acknowledged only once enough replicas hold them (WAIT),
and Thiqa refuses to start on a Redis that may evict keys."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import pytest
import redis

from service.core.status_list import StatusValue
from service.errors import ChangeNotReplicated
from service.store.connection import KeySpace, connect, parse_redis_url
from service.store.inspection import StoreFacts, StoreMisconfigured, check_store
from service.store.replication import Replication
from service.store.status import StatusStore
from tests.topologies import ClusterGroup, SentinelGroup

VCT = "https://issuer.example/types/national-id"
IAT = 2_000_000_000
EXP = IAT + 365 * 86400


async def _issue_and_revoke(url: str, prefix: str, replicas: int) -> tuple[str, int]:
    client = connect(url)
    try:
        store = StatusStore(
            client,
            KeySpace(prefix),
            list_size=4096,
            replication=Replication(client, replicas=replicas, timeout_ms=1000),
        )
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid="k1")
        await store.change(record.credential_id, StatusValue.INVALID, now=IAT + 1)
        return record.credential_id, record.idx
    finally:
        await client.aclose()


def _record_on_cluster_replica(port: int, prefix: str, credential_id: str) -> dict[Any, Any]:
    """The credential's record as a cluster replica holds it, read from the replica itself."""
    list_id, serial = credential_id.split(".")
    replica = redis.Redis(host="127.0.0.1", port=port)
    try:
        replica.execute_command("READONLY")  # else a cluster replica redirects to its master
        return replica.hgetall(KeySpace(prefix).credential(list_id, serial))
    finally:
        replica.close()


def test_on_a_cluster_a_revocation_is_on_the_replica_when_acknowledged(
    redis_cluster: ClusterGroup,
) -> None:
    prefix = f"t{secrets.token_hex(6)}"
    credential_id, _ = asyncio.run(_issue_and_revoke(redis_cluster.url, prefix, replicas=1))
    list_id, serial = credential_id.split(".")
    key = KeySpace(prefix).credential(list_id, serial)
    master = redis_cluster.master_of(key)
    (replica,) = redis_cluster.replicas_of(master)
    record = _record_on_cluster_replica(replica, prefix, credential_id)
    # changed_at moved with the revocation: the replica already holds it.
    assert record[b"changed_at"] == str(IAT + 1).encode()


def test_more_replicas_than_confirm_in_time_is_change_not_replicated_and_repeating_is_safe(
    redis_sentinel: SentinelGroup,
) -> None:
    prefix = f"t{secrets.token_hex(6)}"

    async def go() -> tuple[str, StatusValue, StatusValue]:
        client = connect(redis_sentinel.url)
        try:
            keys = KeySpace(prefix)
            # Two replicas exist; asking for three cannot be met.
            greedy = StatusStore(
                client,
                keys,
                list_size=4096,
                replication=Replication(client, replicas=3, timeout_ms=200),
            )
            with pytest.raises(ChangeNotReplicated) as refused:
                await greedy.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid="k1")
            assert (refused.value.code, refused.value.status) == ("change_not_replicated", 503)

            fine = StatusStore(
                client,
                keys,
                list_size=4096,
                replication=Replication(client, replicas=2, timeout_ms=1000),
            )
            record = await fine.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid="k1")
            with pytest.raises(ChangeNotReplicated):
                await greedy.change(record.credential_id, StatusValue.INVALID, now=IAT + 1)
            # Repeated: the same answer, never a conflict (the change is idempotent) ...
            with pytest.raises(ChangeNotReplicated):
                await greedy.change(record.credential_id, StatusValue.INVALID, now=IAT + 2)
            # ... and once enough replicas can confirm, the repeat is acknowledged.
            again = await fine.change(record.credential_id, StatusValue.INVALID, now=IAT + 3)
            return record.credential_id, again, (await fine.get(record.credential_id)).status
        finally:
            await client.aclose()

    _, again, stored = asyncio.run(go())
    assert again == stored == StatusValue.INVALID


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl", "allkeys-lfu"]
)
def test_an_evicting_policy_is_refused(policy: str) -> None:
    facts = StoreFacts(
        eviction_policies=frozenset({"noeviction", policy}), append_only=True, fewest_replicas=1
    )
    with pytest.raises(StoreMisconfigured, match=f"{policy}.*noeviction"):
        check_store(facts, parse_redis_url("redis+cluster://127.0.0.1:7000"), None)


def test_no_append_only_file_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    facts = StoreFacts(
        eviction_policies=frozenset({"noeviction"}), append_only=False, fewest_replicas=0
    )
    with caplog.at_level(logging.WARNING, logger="thiqa.store"):
        assert check_store(facts, parse_redis_url("redis://127.0.0.1:7000"), None) == 0
    assert ["appendonly yes" in r.getMessage() for r in caplog.records] == [True]
