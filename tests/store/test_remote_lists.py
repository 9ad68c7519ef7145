"""The cache of other issuers' status lists: one script reads an entry, and a list that is
not (wholly) there is a miss, to be fetched again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis

from service.settings import Settings
from service.store.connection import KeySpace, connect
from service.store.remote_lists import (
    CacheMiss,
    IndexOutOfRange,
    RemoteListCache,
    StaleList,
    _hash,
    _uri_hash,
)

from .helpers import url_of

T = TypeVar("T")
URI = "https://status.example/lists/1"


def _run(settings: Settings, action: Callable[[RemoteListCache], Awaitable[T]]) -> T:
    async def go() -> T:
        client = connect(url_of(settings))
        try:
            return await action(RemoteListCache(client, KeySpace(settings.redis_prefix)))
        finally:
            await client.aclose()

    return asyncio.run(go())


NOW = 1_800_000_000
BUDGET = 1 << 20


def _put(cache: RemoteListCache) -> Awaitable[bool]:
    # Entry 5 (2 bits) is bits 2-3 of byte 1, counted from the least significant: 2
    # (suspended) there is 0b0000_1000.
    return cache.put(
        URI,
        bits=2,
        data=bytes([0, 0b0000_1000, 0, 0]),
        seconds=60,
        issued_at=NOW,
        now=NOW,
        budget=BUDGET,
    )


def test_reads_an_entry_in_the_published_bit_order(settings: Settings) -> None:
    async def go(cache: RemoteListCache) -> tuple[int, int]:
        await _put(cache)
        return await cache.status_of(URI, 5), await cache.status_of(URI, 4)

    assert _run(settings, go) == (2, 0)


def test_index_beyond_the_list_is_out_of_range(settings: Settings) -> None:
    async def go(cache: RemoteListCache) -> int:
        await _put(cache)
        return await cache.status_of(URI, 16)

    with pytest.raises(IndexOutOfRange):
        _run(settings, go)


@pytest.mark.parametrize("gone", ["data", "bits"])
def test_half_expired_entry_is_a_miss_not_an_index_out_of_range(
    settings: Settings, redis_client: redis.Redis, gone: str
) -> None:
    """The two keys expire one after the other; between the two, an entry of a valid list
    must not read as out of range (``invalid_status_reference`` for a valid credential)."""
    keys = KeySpace(settings.redis_prefix)
    _run(settings, _put)
    i, h = _hash(""), _uri_hash(URI)
    name = keys.remote_list_data(i, h) if gone == "data" else keys.remote_list_bits(i, h)
    redis_client.delete(name)

    async def go(cache: RemoteListCache) -> int:
        return await cache.status_of(URI, 5)

    with pytest.raises(CacheMiss):
        _run(settings, go)


def test_entries_are_kept_apart_by_issuer(settings: Settings) -> None:
    async def go(cache: RemoteListCache) -> tuple[int, bool]:
        await cache.put(
            URI,
            bits=2,
            data=bytes([0, 0b0000_1000, 0, 0]),
            seconds=60,
            issued_at=NOW,
            now=NOW,
            budget=BUDGET,
            issuer="https://a.example",
        )
        first = await cache.status_of(URI, 5, issuer="https://a.example")
        try:
            await cache.status_of(URI, 5, issuer="https://b.example")
        except CacheMiss:
            return first, True
        return first, False

    assert _run(settings, go) == (2, True)


def test_an_older_list_is_refused_even_when_nothing_is_cached(settings: Settings) -> None:
    async def go(cache: RemoteListCache) -> list[bool | str]:
        results: list[bool | str] = []
        for iat, seconds in ((NOW, 0), (NOW - 1, 60), (NOW, 60)):
            try:
                results.append(
                    await cache.put(
                        URI,
                        bits=2,
                        data=b"\x00" * 4,
                        seconds=seconds,
                        issued_at=iat,
                        now=NOW,
                        budget=BUDGET,
                    )
                )
            except StaleList:
                results.append("stale")
        return results

    assert _run(settings, go) == [False, "stale", True]
