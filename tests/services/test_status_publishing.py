"""StatusPublisher on a real redis-server: one build per change, built off the event loop,
re-signed before its freshness runs out, never serving an older version or a lost list."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from service.core.keys import SigningKey, generate_signing_key, parse_public_jwk
from service.core.status_list import StatusValue, get_status
from service.core.status_token import read_status_list
from service.services.status_publishing import (
    JSON_CLAIMS,
    STATUS_LIST_JWT,
    StatusPublisher,
)
from service.settings import Settings
from service.store.connection import KeySpace, connect
from service.store.status import StatusStore
from tests.store.helpers import url_of

T = TypeVar("T")
VCT = "https://issuer.example/types/national-id"


@dataclass
class Clock:
    now: float = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CountingEncoding:
    """The JWT form, counting its builds and noting the thread each ran on."""

    media_type: str = STATUS_LIST_JWT.media_type
    threads: list[threading.Thread] = field(default_factory=list)

    def encode(self, claims: Mapping[str, Any], key: SigningKey) -> bytes:
        self.threads.append(threading.current_thread())
        return STATUS_LIST_JWT.encode(claims, key)


def _with_publisher(
    settings: Settings,
    action: Callable[[StatusStore, StatusPublisher], Awaitable[T]],
    **options: Any,
) -> T:
    async def go() -> T:
        client = connect(url_of(settings))
        try:
            store = StatusStore(client, KeySpace(settings.redis_prefix), list_size=4096)
            publisher = StatusPublisher(settings=settings, status=store, **options)
            return await action(store, publisher)
        finally:
            await client.aclose()

    return asyncio.run(go())


def _read(body: bytes, key: SigningKey, uri: str, now: float) -> bytes:
    keys = {key.kid: parse_public_jwk(key.verification_key().public_jwk(), kid=key.kid)}
    return read_status_list(body.decode(), keys=keys, uri=uri, now=int(now)).data


def test_one_build_per_change_off_the_event_loop_and_the_next_fetch_sees_a_change(
    settings: Settings,
) -> None:
    key, clock, encoding = generate_signing_key(), Clock(), CountingEncoding()

    async def go(store: StatusStore, publisher: StatusPublisher) -> None:
        record = await store.reserve(
            vct=VCT, issued_at=1, expires_at=int(clock.now) + 9_000_000, kid="k"
        )
        uri = settings.status_list_uri(record.list_id)
        loop_thread = threading.current_thread()
        first = await asyncio.gather(*(publisher.published(record.list_id) for _ in range(20)))
        assert first[0] is not None
        assert all(p is first[0] for p in first)  # 20 fetches at once: one build
        assert len(encoding.threads) == 1
        assert encoding.threads[0] is not loop_thread  # built on a worker thread
        assert await publisher.published(record.list_id) is first[0]
        assert len(encoding.threads) == 1

        await store.change(record.credential_id, StatusValue.INVALID, now=int(clock.now))
        after = await publisher.published(record.list_id)
        assert after is not None
        assert after.version == first[0].version + 1
        assert len(encoding.threads) == 2
        body, etag = after.forms[encoding.media_type]
        assert etag != first[0].forms[encoding.media_type][1]
        data = _read(body, key, uri, clock.now)
        assert get_status(data, record.idx, 2) == StatusValue.INVALID

    _with_publisher(settings, go, signing_key=lambda: key, encodings=(encoding,), clock=clock)


def test_tokens_are_resigned_before_half_their_ttl_and_never_cached_past_exp(
    settings: Settings,
) -> None:
    key, clock = generate_signing_key(), Clock()
    settings = settings.model_copy(
        update={"status_list_ttl_seconds": 600, "status_list_lifetime_seconds": 120}
    )

    async def go(store: StatusStore, publisher: StatusPublisher) -> None:
        record = await store.reserve(
            vct=VCT, issued_at=1, expires_at=int(clock.now) + 9_000_000, kid="k"
        )
        first = await publisher.published(record.list_id)
        assert first is not None
        claims = json.loads(first.forms[JSON_CLAIMS.media_type][0])
        assert (claims["iat"], claims["exp"], claims["ttl"]) == (
            int(clock.now),
            int(clock.now) + 120,
            600,
        )
        assert first.max_age(clock.now) == 120  # the ttl would outlive the token: exp wins
        clock.now += 59
        assert await publisher.published(record.list_id) is first
        assert first.max_age(clock.now) == 61
        clock.now += 1  # half the lifetime: re-signed, with the time it was built
        second = await publisher.published(record.list_id)
        assert second is not None
        assert second is not first
        assert second.iat == int(clock.now)
        assert second.version == first.version
        assert second.max_age(clock.now) == 120

    _with_publisher(settings, go, signing_key=lambda: key, clock=clock)


def test_a_new_signing_key_gets_a_new_token(settings: Settings) -> None:
    keys = [generate_signing_key()]

    async def go(store: StatusStore, publisher: StatusPublisher) -> None:
        record = await store.reserve(vct=VCT, issued_at=1, expires_at=3_000_000_000, kid="k")
        first = await publisher.published(record.list_id)
        keys.append(generate_signing_key())
        second = await publisher.published(record.list_id)
        assert first is not None
        assert second is not None
        assert (first.kid, second.kid) == (keys[0].kid, keys[1].kid)

    _with_publisher(settings, go, signing_key=lambda: keys[-1])


def test_a_lost_or_unknown_list_is_never_published(
    settings: Settings, redis_client: redis.Redis
) -> None:
    key = generate_signing_key()

    async def go(store: StatusStore, publisher: StatusPublisher) -> None:
        record = await store.reserve(vct=VCT, issued_at=1, expires_at=3_000_000_000, kid="k")
        assert await publisher.published(record.list_id) is not None
        await store.change(record.credential_id, StatusValue.INVALID, now=1)
        bits = KeySpace(settings.redis_prefix).status_bits(record.list_id)
        assert redis_client.delete(bits) == 1
        # The token held from before would say "valid" for the revoked entry: not served.
        assert await publisher.published(record.list_id) is None
        assert await publisher.published("000000000000") is None
        assert await publisher.published("../../etc") is None
        assert not redis_client.exists(bits)

    _with_publisher(settings, go, signing_key=lambda: key)
