"""Credential offers, pre-authorized codes, access tokens and c_nonces in Redis.

An offer is one hash that expires with the offer. It holds the offer document (which carries
the pre-authorized code, so the wallet can fetch it by reference), a hash of the transaction
code, the guesses left, the access token's hash once one is granted, and the claims to sign,
sealed by the caller (:mod:`service.keyring.offer_claims`): this store never sees them in the
clear, so neither do Redis's files.
Every step of the flow is one Lua script on that hash, so each is atomic and single-use even
with several workers:

* ``redeem``: pre-authorized code (+ transaction code) -> access token. A wrong transaction
  code costs a guess; the last guess deletes the offer. A second redemption of the code
  deletes the offer too (RFC 6749 §4.1.2: a code used twice has leaked, so the access token
  already granted for it is revoked with it).
* ``take``: access token -> the sealed claims, removed from Redis in the same step. The hash then
  keeps only the offer's state and, after issuance, the credential id (no personal data), so
  the issuing app can find the credential to revoke it.

c_nonces are stateless until used (:class:`NonceStore`): using one sets a marker key with
``SET NX`` that lives until the nonce expires, so the check and the use are one atomic step.

Secrets are stored as SHA-256 hashes, except the pre-authorized code, which is in the offer
document because the offer URI must return it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Final, cast

import redis.asyncio as aioredis

from service.core.encoding import EncodingError, b64url_decode, b64url_encode
from service.core.openid4vci import NONCE_PATTERN
from service.errors import StoreUnavailable
from service.store.connection import KeySpace, translate_errors

__all__ = [
    "NonceStore",
    "OfferState",
    "OfferStatus",
    "OfferStore",
    "RedeemOutcome",
    "Redemption",
    "hash_secret",
    "new_secret",
    "split_secret",
]

_OFFER_ID: Final = re.compile(r"^[A-Za-z0-9_-]{22}$")
_SECRET: Final = re.compile(r"^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret(offer_id: str) -> str:
    """``<offer id>.<256 random bits>``: the offer id routes the secret to its hash."""
    return f"{offer_id}.{secrets.token_urlsafe(32)}"


def split_secret(value: str) -> str | None:
    """The offer id inside a pre-authorized code or access token, or None if malformed."""
    match = _SECRET.fullmatch(value)
    return match.group(1) if match else None


class OfferState(StrEnum):
    OFFERED = "offered"  # waiting for the wallet's token request
    TOKEN_ISSUED = "token_issued"  # noqa: S105 - a state name; code redeemed, credential not yet requested
    ISSUING = "issuing"  # claims taken, being signed
    ISSUED = "issued"
    FAILED = "failed"  # the claims were taken but signing failed


class RedeemOutcome(Enum):
    GRANTED = 1
    UNKNOWN = -1  # no such offer, wrong code, or expired
    REUSED = -2  # the code was redeemed before; the offer is now deleted
    TX_MISSING = -3
    TX_WRONG = -4
    BURNT = -5  # the last transaction code guess was wrong; the offer is deleted
    TX_UNEXPECTED = -6


@dataclass(frozen=True, slots=True)
class Redemption:
    outcome: RedeemOutcome
    token_expires_at: int = 0
    guesses_left: int = 0


@dataclass(frozen=True, slots=True)
class OfferStatus:
    offer_id: str
    state: OfferState
    expires_at: int
    credential_id: str | None
    #: The API client that made the offer: the only one that may follow it.
    client: str = ""


_REDEEM = """
local f = redis.call('HMGET', KEYS[1], 'code', 'state', 'tx', 'exp')
if not f[1] or f[1] ~= ARGV[1] then return {-1} end
local now = tonumber(ARGV[3])
if now >= tonumber(f[4]) then return {-1} end
if f[2] ~= 'offered' then
  redis.call('DEL', KEYS[1])
  return {-2}
end
if f[3] ~= '' then
  if ARGV[2] == '' then return {-3} end
  if f[3] ~= ARGV[2] then
    local left = redis.call('HINCRBY', KEYS[1], 'attempts', -1)
    if left <= 0 then
      redis.call('DEL', KEYS[1])
      return {-5}
    end
    return {-4, left}
  end
elseif ARGV[2] ~= '' then
  return {-6}
end
local token_exp = math.min(now + tonumber(ARGV[5]), tonumber(f[4]))
redis.call('HSET', KEYS[1], 'state', 'token_issued', 'token', ARGV[4], 'token_exp', token_exp)
return {1, token_exp}
"""

_TAKE = """
local f = redis.call('HMGET', KEYS[1], 'state', 'token', 'token_exp', 'claims')
if f[1] ~= 'token_issued' or f[2] ~= ARGV[1] then return false end
if tonumber(f[3]) <= tonumber(ARGV[2]) then return false end
redis.call('HDEL', KEYS[1], 'claims', 'token', 'token_exp', 'offer', 'code', 'tx', 'attempts')
redis.call('HSET', KEYS[1], 'state', 'issuing')
return f[4]
"""

_FINISH = """
if redis.call('HGET', KEYS[1], 'state') ~= 'issuing' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'credential_id', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class OfferStore:
    def __init__(self, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._redeem = redis.register_script(_REDEEM)
        self._take = redis.register_script(_TAKE)
        self._finish = redis.register_script(_FINISH)

    @staticmethod
    def new_offer_id() -> str:
        return secrets.token_urlsafe(16)

    @staticmethod
    def is_offer_id(offer_id: str) -> bool:
        return _OFFER_ID.fullmatch(offer_id) is not None

    async def create(
        self,
        offer_id: str,
        *,
        code: str,
        tx_hash: str,
        attempts: int,
        document: dict[str, Any],
        sealed_claims: str,
        expires_at: int,
        client: str,
    ) -> None:
        key = self._keys.credential_offer(offer_id)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "state": OfferState.OFFERED.value,
                    "code": hash_secret(code),
                    "tx": tx_hash,
                    "attempts": attempts,
                    "exp": expires_at,
                    "offer": json.dumps(document, ensure_ascii=False),
                    "claims": sealed_claims,
                    "client": client,
                },
            )
            pipe.expireat(key, expires_at)
            await pipe.execute()

    async def document(self, offer_id: str, *, now: int) -> dict[str, Any] | None:
        """The offer object while its code can still be redeemed, else None."""
        if not self.is_offer_id(offer_id):
            return None
        async with translate_errors():
            state, offer, exp = cast(
                "list[bytes | None]",
                await self._redis.hmget(
                    self._keys.credential_offer(offer_id), "state", "offer", "exp"
                ),
            )
        if (
            offer is None
            or exp is None
            or state != OfferState.OFFERED.value.encode()
            or now >= int(exp)
        ):
            return None
        claims: dict[str, Any] = json.loads(offer)
        return claims

    async def redeem(
        self, code: str, tx_hash: str, *, token: str, token_ttl: int, now: int
    ) -> Redemption:
        offer_id = split_secret(code)
        if offer_id is None:
            return Redemption(RedeemOutcome.UNKNOWN)
        async with translate_errors():
            result = await self._redeem(
                keys=[self._keys.credential_offer(offer_id)],
                args=[hash_secret(code), tx_hash, now, hash_secret(token), token_ttl],
            )
        outcome = RedeemOutcome(int(result[0]))
        if outcome is RedeemOutcome.GRANTED:
            return Redemption(outcome, token_expires_at=int(result[1]))
        if outcome is RedeemOutcome.TX_WRONG:
            return Redemption(outcome, guesses_left=int(result[1]))
        return Redemption(outcome)

    async def token_valid(self, token: str, *, now: int) -> bool:
        """Whether ``token`` may still fetch a credential (read only: nothing is used up)."""
        offer_id = split_secret(token)
        if offer_id is None:
            return False
        async with translate_errors():
            state, stored, exp = await self._redis.hmget(
                self._keys.credential_offer(offer_id), "state", "token", "token_exp"
            )
        return (
            state == OfferState.TOKEN_ISSUED.value.encode()
            and stored == hash_secret(token).encode()
            and exp is not None
            and int(exp) > now
        )

    async def take(self, token: str, *, now: int) -> tuple[str, str] | None:
        """Use the access token: return (offer id, sealed claims) and delete them, atomically.
        None if the token is unknown, expired or used."""
        offer_id = split_secret(token)
        if offer_id is None:
            return None
        async with translate_errors():
            claims = await self._take(
                keys=[self._keys.credential_offer(offer_id)], args=[hash_secret(token), now]
            )
        if claims is None:
            return None
        return offer_id, claims.decode("ascii") if isinstance(claims, bytes) else str(claims)

    async def finish(self, offer_id: str, *, credential_id: str | None, keep_seconds: int) -> None:
        """Record how issuance ended: the credential id (no claims), kept ``keep_seconds``."""
        state = OfferState.ISSUED if credential_id else OfferState.FAILED
        async with translate_errors():
            await self._finish(
                keys=[self._keys.credential_offer(offer_id)],
                args=[state.value, credential_id or "", keep_seconds],
            )

    async def status(self, offer_id: str, *, now: int) -> OfferStatus | None:
        if not self.is_offer_id(offer_id):
            return None
        async with translate_errors():
            state, exp, credential_id, client = cast(
                "list[bytes | None]",
                await self._redis.hmget(
                    self._keys.credential_offer(offer_id), "state", "exp", "credential_id", "client"
                ),
            )
        if state is None or exp is None:
            return None
        return OfferStatus(
            offer_id=offer_id,
            state=OfferState(_text(state)),
            expires_at=int(exp),
            credential_id=_text(credential_id) if credential_id else None,
            client=_text(client) if client else "",
        )


class NonceStore:
    """c_nonces: unpredictable, short-lived, usable once, and free to hand out.

    ``POST /nonce`` is public, so handing out a nonce writes nothing: a nonce is its expiry
    and 64 random bits, authenticated with an HMAC under a secret kept in Redis. Only using
    one writes (a marker that lives until the nonce expires), and the credential endpoint
    checks the access token before it gets there, so an anonymous caller cannot make Redis
    grow by asking for nonces.
    """

    def __init__(self, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._secret: bytes | None = None

    async def _key(self) -> bytes:
        if self._secret is None:
            async with translate_errors():
                # Every worker agrees on one secret: the first to start sets it.
                await self._redis.set(self._keys.c_nonce_secret(), secrets.token_bytes(32), nx=True)
                stored = cast("bytes | None", await self._redis.get(self._keys.c_nonce_secret()))
            if stored is None or len(stored) != 32:
                raise StoreUnavailable("The nonce secret is missing.")
            self._secret = stored
        return self._secret

    @staticmethod
    def _mac(key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()[:8]

    async def new(self, *, ttl: int, now: float | None = None) -> str:
        expiry = int(time.time() if now is None else now) + ttl
        body = expiry.to_bytes(8, "big") + secrets.token_bytes(8)
        return b64url_encode(body + self._mac(await self._key(), body))

    async def use(self, nonce: str, *, now: float | None = None) -> bool:
        """True exactly once for a nonce this store made and that has not expired."""
        if not NONCE_PATTERN.fullmatch(nonce):
            return False
        try:
            raw = b64url_decode(nonce)
        except EncodingError:
            return False
        body, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(await self._key(), body)):
            return False
        expiry = int.from_bytes(body[:8], "big")
        if expiry <= int(time.time() if now is None else now):
            return False
        async with translate_errors():
            return bool(
                await self._redis.set(self._keys.c_nonce(nonce), b"1", exat=expiry, nx=True)
            )
