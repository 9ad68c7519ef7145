"""API clients (government apps) and their keys.

A key is ``thq_<key id>_<secret>``. Redis keeps the key id and a SHA-256 of the secret, never
the secret: a leaked Redis dump lets nobody call the API. SHA-256 without a slow KDF is right
here because the secret is 256 random bits, not a password; nothing can be guessed from the
hash. The hash is compared in constant time, and the lookup is by key id, so response timing
says nothing about how much of a guessed secret was right.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis.asyncio as aioredis

from service.errors import ClientExists, ClientNotFound, InvalidRequest, RateLimited
from service.store.connection import KeySpace, translate_errors
from service.store.round_trip import ScriptCall

__all__ = ["Client", "ClientStore", "PendingAuthentication", "Scope", "looks_like_api_key"]

KEY_PREFIX = "thq_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_KEY = re.compile(r"^thq_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def looks_like_api_key(value: str) -> bool:
    """Whether ``value`` has the shape of a Thiqa API key (``thq_<id>_<secret>``): says
    nothing of whether such a key exists."""
    return _KEY.fullmatch(value) is not None


# Lookup and rate count in one round trip. Only a request that holds the whole key is counted:
# the key id is the readable half of every key (a truncated log line shows it), and knowing it
# must not let anyone spend that client's quota; a key that does not exist leaves nothing
# behind. The hash is compared here only to decide what to count; whether the key
# authenticates is decided in Python, in constant time.
_AUTHENTICATE = """
local f = redis.call('HMGET', KEYS[1], 'name', 'hash', 'scopes')
if not f[1] or not f[2] then return 0 end
local count = 0
if tonumber(ARGV[2]) > 0 and f[2] == ARGV[1] then
  count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], 61) end
end
return {f[1], f[2], f[3], count}
"""


class Scope(StrEnum):
    ISSUE = "issue"
    REVOKE = "revoke"
    VERIFY = "verify"
    #: Crosses the line between clients: read and (with ``revoke``) change the status of any
    #: client's credentials, not only those it issued. For the authority's own back office.
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    scopes: frozenset[Scope]
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class PendingAuthentication:
    """An authentication to be sent; :meth:`read` decides from the script's answer."""

    call: ScriptCall
    presented: str
    per_minute: int
    moment: float
    window: int

    def read(self, row: list[bytes | int] | int) -> Client | None:
        """The client, or None; raises RateLimited past the limit."""
        if not row or not isinstance(row, list):
            return None
        name, stored_hash, scopes, count = row
        assert isinstance(stored_hash, bytes)
        assert isinstance(name, bytes)
        assert isinstance(scopes, bytes)
        assert isinstance(count, int)
        if not hmac.compare_digest(stored_hash, self.presented.encode("ascii")):
            return None
        if self.per_minute > 0 and count > self.per_minute:
            raise RateLimited(retry_after=max(1, int((self.window + 1) * 60 - self.moment)))
        return Client(name=name.decode("utf-8"), scopes=_scopes_of(scopes))


@functools.lru_cache(maxsize=64)
def _scopes_of(stored: bytes) -> frozenset[Scope]:
    """The scopes a stored ``scopes`` field names; on every authenticated request, and there
    are few distinct values, so each is parsed once."""
    return frozenset(Scope(s) for s in stored.decode("ascii").split(",") if s)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    try:
        scopes = frozenset(Scope(v.strip()) for v in values if v.strip())
    except ValueError as exc:
        raise InvalidRequest("Scopes are issue, revoke, verify and admin.") from exc
    if not scopes:
        raise InvalidRequest("A client needs at least one scope.")
    return scopes


class ClientStore:
    def __init__(self, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._authenticate = redis.register_script(_AUTHENTICATE)

    async def add(self, name: str, scopes: frozenset[Scope]) -> str:
        """Create a client and return its API key; the key is not stored and not shown again."""
        if not _NAME.fullmatch(name):
            raise InvalidRequest("Client names are 1-64 of a-z, 0-9, '.', '_' and '-'.")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        scope_text = ",".join(sorted(scopes))
        now = int(time.time())
        async with translate_errors():
            created = await self._redis.hsetnx(self._keys.client(name), "key_id", key_id)
            if not created:
                raise ClientExists()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(
                    self._keys.client(name), mapping={"scopes": scope_text, "created_at": now}
                )
                pipe.hset(
                    self._keys.api_key(key_id),
                    mapping={"name": name, "hash": _hash(secret), "scopes": scope_text},
                )
                pipe.sadd(self._keys.client_names(), name)
                await pipe.execute()
        return f"{KEY_PREFIX}{key_id}_{secret}"

    async def authenticate(
        self, api_key: str, *, per_minute: int = 0, now: float | None = None
    ) -> Client | None:
        """The client holding ``api_key``, or None. With ``per_minute`` > 0, also counts the
        request in the key's fixed one-minute window and raises RateLimited past the limit;
        lookup and count share one round trip, and only requests with the right key count."""
        pending = self.authentication(api_key, per_minute=per_minute, now=now)
        if pending is None:
            return None
        call = pending.call
        async with translate_errors():
            row = await call.script(keys=call.keys, args=call.args)
        return pending.read(row)

    def authentication(
        self, api_key: str, *, per_minute: int = 0, now: float | None = None
    ) -> PendingAuthentication | None:
        """:meth:`authenticate` as a script call to send with others in one round trip
        (:mod:`service.store.round_trip`), or None for a key that cannot be one."""
        match = _KEY.fullmatch(api_key)
        if match is None:
            return None
        key_id, secret = match.groups()
        presented = _hash(secret)
        moment = time.time() if now is None else now
        window = int(moment // 60)
        call = ScriptCall(
            self._authenticate,
            (self._keys.api_key(key_id), self._keys.rate_window(key_id, window)),
            (presented, per_minute),
        )
        return PendingAuthentication(call, presented, per_minute, moment, window)

    async def list(self) -> list[Client]:
        async with translate_errors():
            members = cast("set[bytes]", await self._redis.smembers(self._keys.client_names()))
            names = sorted(n.decode("utf-8") for n in members)
            clients = []
            for name in names:
                row = cast(
                    "list[bytes | None]",
                    await self._redis.hmget(self._keys.client(name), "scopes", "created_at"),
                )
                if row[0] is None:
                    continue
                clients.append(
                    Client(
                        name=name,
                        scopes=frozenset(Scope(s) for s in row[0].decode("ascii").split(",") if s),
                        created_at=int(row[1] or 0),
                    )
                )
        return clients

    async def revoke(self, name: str) -> None:
        """Delete the client and its key; the key stops working at once."""
        async with translate_errors():
            key_id = cast("bytes | None", await self._redis.hget(self._keys.client(name), "key_id"))
            if key_id is None:
                raise ClientNotFound()
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._keys.api_key(key_id.decode("ascii")))
                pipe.delete(self._keys.client(name))
                pipe.srem(self._keys.client_names(), name)
                await pipe.execute()
