"""Running the asyncio stores from plain sync tests, and reading what they left in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis

from service.settings import Settings
from service.store.clients import ClientStore
from service.store.connection import KeySpace, connect
from service.store.status import StatusStore

T = TypeVar("T")

#: The credential fields status.py documents: index, type, issue and expiry times, signing
#: kid, the time of the last status change and the API client it belongs to. Nothing that
#: describes a person.
RECORD_FIELDS = frozenset({b"idx", b"vct", b"iat", b"exp", b"kid", b"changed_at", b"client"})


def url_of(settings: Settings) -> str:
    assert settings.redis_url is not None
    return settings.redis_url.get_secret_value()


def run_status(
    url: str,
    prefix: str,
    action: Callable[[StatusStore], Awaitable[T]],
    *,
    list_size: int = 4096,
) -> T:
    """``action`` on a StatusStore with its own client, opened and closed in one event loop."""

    async def go() -> T:
        client = connect(url)
        try:
            return await action(StatusStore(client, KeySpace(prefix), list_size=list_size))
        finally:
            await client.aclose()

    return asyncio.run(go())


def run_clients(url: str, prefix: str, action: Callable[[ClientStore], Awaitable[T]]) -> T:
    async def go() -> T:
        client = connect(url)
        try:
            return await action(ClientStore(client, KeySpace(prefix)))
        finally:
            await client.aclose()

    return asyncio.run(go())


def keys_under(client: redis.Redis, prefix: str) -> set[bytes]:
    return set(client.scan_iter(match=f"{prefix}:*", count=1000))


def dump_under(client: redis.Redis, prefix: str) -> dict[bytes, object]:
    """Every key under ``prefix`` with its whole value, whatever the type."""
    dump: dict[bytes, object] = {}
    for key in keys_under(client, prefix):
        kind = client.type(key)
        if kind == b"string":
            dump[key] = client.get(key)
        elif kind == b"hash":
            dump[key] = client.hgetall(key)
        elif kind == b"set":
            dump[key] = client.smembers(key)
        else:  # pragma: no cover - the stores write nothing else
            raise AssertionError(f"unexpected {kind!r} at {key!r}")
    return dump
