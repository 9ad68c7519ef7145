"""OfferStore and NonceStore on a real redis-server: single use under concurrency, guess
limits that hold when the guesses race, expiry, and what stays in Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import pytest
import redis

from service.services.openid4vci_issuer import tx_code_hash
from service.settings import Settings
from service.store.connection import KeySpace, connect
from service.store.offers import (
    NonceStore,
    OfferState,
    OfferStore,
    RedeemOutcome,
    hash_secret,
    new_secret,
)

from .helpers import url_of

T = TypeVar("T")
PIN = "493536"
#: Sealed by the caller in production (service.keyring.offer_claims); opaque to the store.
CLAIMS = "v1.0123456789abcdef.c2VhbGVk"


def _hash(client: redis.Redis, key: str | bytes) -> dict[bytes, bytes]:
    # The test client answers bytes; redis-py's types cannot know it.
    return cast("dict[bytes, bytes]", client.hgetall(key))


def run(settings: Settings, action: Callable[[OfferStore, NonceStore], Awaitable[T]]) -> T:
    async def go() -> T:
        client = connect(url_of(settings))
        keys = KeySpace(settings.redis_prefix)
        try:
            return await action(OfferStore(client, keys), NonceStore(client, keys))
        finally:
            await client.aclose()

    return asyncio.run(go())


async def _offer(
    store: OfferStore, *, pin: str | None = PIN, attempts: int = 3, ttl: int = 600
) -> tuple[str, str]:
    offer_id = store.new_offer_id()
    code = new_secret(offer_id)
    await store.create(
        offer_id,
        code=code,
        tx_hash=tx_code_hash(code, pin) if pin else "",
        attempts=attempts,
        document={"grants": {}},
        sealed_claims=CLAIMS,
        expires_at=int(time.time()) + ttl,
        client="issuing-app",
    )
    return offer_id, code


def test_racing_redemptions_grant_at_most_one_token_and_then_withdraw(
    settings: Settings,
) -> None:
    async def go(store: OfferStore, _: NonceStore) -> tuple[list[RedeemOutcome], bool]:
        _offer_id, code = await _offer(store)
        tokens = [new_secret(code.split(".")[0]) for _ in range(20)]
        now = int(time.time())
        results = await asyncio.gather(
            *(
                store.redeem(code, tx_code_hash(code, PIN), token=t, token_ttl=60, now=now)
                for t in tokens
            )
        )
        granted = [
            t for t, r in zip(tokens, results, strict=True) if r.outcome is RedeemOutcome.GRANTED
        ]
        valid = any([await store.token_valid(t, now=now) for t in granted])
        return [r.outcome for r in results], valid

    outcomes, any_valid = run(settings, go)
    assert outcomes.count(RedeemOutcome.GRANTED) == 1
    # The code was presented twice: the offer, and the token it got, are withdrawn.
    assert outcomes.count(RedeemOutcome.REUSED) >= 1
    assert not any_valid


def test_racing_wrong_guesses_get_exactly_the_allowed_number(settings: Settings) -> None:
    async def go(store: OfferStore, _: NonceStore) -> list[RedeemOutcome]:
        offer_id, code = await _offer(store, attempts=3)
        now = int(time.time())
        results = await asyncio.gather(
            *(
                store.redeem(
                    code,
                    tx_code_hash(code, f"{i:06d}"),
                    token=new_secret(offer_id),
                    token_ttl=60,
                    now=now,
                )
                for i in range(30)  # PIN 493536 is not among 000000..000029
            )
        )
        return [r.outcome for r in results]

    outcomes = run(settings, go)
    assert outcomes.count(RedeemOutcome.TX_WRONG) == 2
    assert outcomes.count(RedeemOutcome.BURNT) == 1
    assert outcomes.count(RedeemOutcome.UNKNOWN) == 27


def test_racing_credential_requests_take_the_claims_once(
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    async def go(store: OfferStore, _: NonceStore) -> list[tuple[str, str] | None]:
        offer_id, code = await _offer(store)
        token = new_secret(offer_id)
        now = int(time.time())
        granted = await store.redeem(
            code, tx_code_hash(code, PIN), token=token, token_ttl=60, now=now
        )
        assert granted.outcome is RedeemOutcome.GRANTED
        return list(await asyncio.gather(*(store.take(token, now=now) for _ in range(20))))

    taken = run(settings, go)
    winners = [t for t in taken if t is not None]
    assert len(winners) == 1
    assert winners[0][1] == CLAIMS
    blob = b"".join(
        v
        for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:*")
        for v in _hash(redis_client, key).values()
    )
    assert b"ZZ104233" not in blob


def test_nonce_is_used_once_even_when_raced(settings: Settings) -> None:
    async def go(_: OfferStore, nonces: NonceStore) -> tuple[list[bool], bool, bool]:
        nonce = await nonces.new(ttl=60)
        results = await asyncio.gather(*(nonces.use(nonce) for _ in range(20)))
        return list(results), await nonces.use("A" * 32), await nonces.use("x" * 5000)

    results, made_up, oversized = run(settings, go)
    assert results.count(True) == 1
    assert not made_up
    assert not oversized


def test_nonce_expires(settings: Settings) -> None:
    async def go(_: OfferStore, nonces: NonceStore) -> bool:
        nonce = await nonces.new(ttl=1)
        await asyncio.sleep(1.2)
        return await nonces.use(nonce)

    assert run(settings, go) is False


def test_offer_expires_in_redis_and_by_the_clock(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def go(store: OfferStore, _: NonceStore) -> tuple[RedeemOutcome, int]:
        offer_id, code = await _offer(store, ttl=30)
        ttl = redis_client.ttl(KeySpace(settings.redis_prefix).credential_offer(offer_id))
        # Thirty seconds on, the offer is refused even if Redis has not dropped it yet.
        later = int(time.time()) + 31
        result = await store.redeem(
            code, tx_code_hash(code, PIN), token=new_secret(offer_id), token_ttl=60, now=later
        )
        return result.outcome, ttl

    outcome, ttl = run(settings, go)
    assert outcome is RedeemOutcome.UNKNOWN
    assert 0 < ttl <= 30


def test_access_token_never_outlives_its_offer(settings: Settings) -> None:
    async def go(store: OfferStore, _: NonceStore) -> tuple[int, int]:
        offer_id, code = await _offer(store, ttl=20)
        now = int(time.time())
        result = await store.redeem(
            code, tx_code_hash(code, PIN), token=new_secret(offer_id), token_ttl=300, now=now
        )
        return result.token_expires_at, now

    expires, now = run(settings, go)
    assert now < expires <= now + 20


def test_what_redis_holds_for_an_offer(settings: Settings, redis_client: redis.Redis) -> None:
    async def go(store: OfferStore, _: NonceStore) -> tuple[str, str, str]:
        offer_id, code = await _offer(store)
        token = new_secret(offer_id)
        await store.redeem(
            code, tx_code_hash(code, PIN), token=token, token_ttl=60, now=int(time.time())
        )
        return offer_id, code, token

    offer_id, code, token = run(settings, go)
    stored = _hash(redis_client, KeySpace(settings.redis_prefix).credential_offer(offer_id))
    # Secrets only as hashes: no access token, no PIN in the clear.
    assert stored[b"token"] == hash_secret(token).encode()
    assert token.encode() not in b"".join(stored.values())
    assert PIN.encode() not in b"".join(stored.values())
    assert stored[b"code"] == hash_secret(code).encode()
    assert stored[b"state"] == OfferState.TOKEN_ISSUED.value.encode()

    async def finish(store: OfferStore, _: NonceStore) -> None:
        assert await store.take(token, now=int(time.time())) is not None
        await store.finish(offer_id, credential_id="abcdef012345.serial", keep_seconds=60)

    run(settings, finish)
    after = redis_client.hgetall(KeySpace(settings.redis_prefix).credential_offer(offer_id))
    assert set(after) == {b"state", b"exp", b"credential_id", b"client"}
    assert after[b"state"] == b"issued"


@pytest.mark.parametrize("malformed", ["", "x", "a.b", "A" * 22 + "." + "A" * 42])
def test_malformed_secrets_touch_nothing(settings: Settings, malformed: str) -> None:
    async def go(store: OfferStore, _: NonceStore) -> tuple[RedeemOutcome, bool, object]:
        redeemed = await store.redeem(malformed, "", token="t", token_ttl=1, now=0)
        return (
            redeemed.outcome,
            await store.token_valid(malformed, now=0),
            await store.take(malformed, now=0),
        )

    assert run(settings, go) == (RedeemOutcome.UNKNOWN, False, None)


def test_handing_out_nonces_writes_nothing(settings: Settings, redis_client: redis.Redis) -> None:
    async def go(_: OfferStore, nonces: NonceStore) -> list[str]:
        await nonces.new(ttl=60)  # the first call may create the shared secret
        before = set(redis_client.scan_iter(match=f"{settings.redis_prefix}:*"))
        made = [await nonces.new(ttl=60) for _ in range(200)]
        assert set(redis_client.scan_iter(match=f"{settings.redis_prefix}:*")) == before
        return made

    made = run(settings, go)
    assert len(set(made)) == 200


def test_nonce_with_a_forged_or_altered_mac_is_refused(settings: Settings) -> None:
    from service.core.encoding import b64url_decode, b64url_encode

    async def go(_: OfferStore, nonces: NonceStore) -> list[bool]:
        real = b64url_decode(await nonces.new(ttl=60))
        far_future = (2**40).to_bytes(8, "big")
        forged = [
            real[:15] + bytes([real[15] ^ 1]) + real[16:],  # another random part
            far_future + real[8:],  # a later expiry
            real[:16] + bytes(8),  # a zero MAC
        ]
        return [await nonces.use(b64url_encode(raw)) for raw in forged]

    assert run(settings, go) == [False, False, False]


def test_nonce_secret_is_shared_by_every_store(settings: Settings) -> None:
    async def go(_: OfferStore, nonces: NonceStore) -> bool:
        nonce = await nonces.new(ttl=60)
        client = connect(url_of(settings))
        try:
            other = NonceStore(client, KeySpace(settings.redis_prefix))
            return await other.use(nonce)
        finally:
            await client.aclose()

    assert run(settings, go) is True
