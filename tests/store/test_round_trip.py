"""run_together: several scripts, one round trip, and Redis losing its scripts midway."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from service.core.status_list import StatusValue
from service.errors import StoreUnavailable
from service.settings import Settings
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.round_trip import run_together
from service.store.status import StatusStore

from .helpers import url_of

VCT = "https://issuer.example/types/national-id"


def test_answers_in_order_and_lost_scripts_run_exactly_once(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        client = connect(url_of(settings))
        try:
            keys = KeySpace(settings.redis_prefix)
            clients, status = ClientStore(client, keys), StatusStore(client, keys, list_size=4096)
            api_key = await clients.add("app", frozenset({Scope.VERIFY}))
            record = await status.reserve(vct=VCT, issued_at=1, expires_at=3_000_000_000, kid="k")
            await status.change(record.credential_id, StatusValue.SUSPENDED, now=1)
            pending = clients.authentication(api_key, per_minute=100, now=120.0)
            assert pending is not None
            calls = [pending.call, status.status_call(record.list_id, record.idx)]
            first = await run_together(client, calls)
            redis_client.script_flush()  # Redis restarted, or an operator flushed scripts
            second = await run_together(client, calls)
            return [pending.read(first[0]), StatusStore.read_status(first[1])], [
                pending.read(second[0]),
                StatusStore.read_status(second[1]),
            ]
        finally:
            await client.aclose()

    first, second = asyncio.run(go())
    assert [c.name for c in (first[0], second[0])] == ["app", "app"]
    assert first[1] == second[1] == StatusValue.SUSPENDED
    # The rate counter of the window was counted once per round trip, never twice.
    counters = list(redis_client.scan_iter(match=f"{settings.redis_prefix}:*:rate:*"))
    assert [int(redis_client.get(c) or 0) for c in counters] == [2]


def test_redis_gone_is_store_unavailable(settings: Settings) -> None:
    async def go() -> None:
        client = connect("redis://127.0.0.1:1")
        try:
            store = StatusStore(client, KeySpace(settings.redis_prefix), list_size=4096)
            await run_together(client, [store.status_call("0123456789ab", 1)])
        finally:
            await client.aclose()

    with pytest.raises(StoreUnavailable):
        asyncio.run(go())
