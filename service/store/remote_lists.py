"""A Redis cache of other issuers' status lists, each kept no longer than its ``ttl``.

The decoded list is stored as-is (Token Status List byte order) so an entry is read with one
``BITFIELD`` in one round trip, whatever the list's size; the list is fetched again only when
its cache entry has expired.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from service.store.connection import KeySpace, translate_errors

__all__ = ["CacheMiss", "IndexOutOfRange", "RemoteListCache"]

# Both keys expire together, but each on its own: a moment where only one is left is a miss
# (fetch again), not an index beyond an empty list.
_READ = """
local bits = tonumber(redis.call('GET', KEYS[2]))
if not bits or redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local idx = tonumber(ARGV[1])
if (idx + 1) * bits > redis.call('STRLEN', KEYS[1]) * 8 then return -2 end
local pos = idx * bits
local offset = math.floor(pos / 8) * 8 + (8 - pos % 8 - bits)
return redis.call('BITFIELD', KEYS[1], 'GET', 'u' .. bits, offset)[1]
"""


class CacheMiss(Exception):
    pass


class IndexOutOfRange(Exception):
    pass


def _uri_hash(uri: str, issuer: str = "") -> str:
    # Keyed by issuer too: two issuers may publish at one host, and a list fetched and
    # verified under one issuer's keys must never answer for the other's credentials.
    return hashlib.sha256(f"{issuer}\n{uri}".encode()).hexdigest()[:32]


class RemoteListCache:
    def __init__(self, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._read = redis.register_script(_READ)

    async def status_of(self, uri: str, idx: int, *, issuer: str = "") -> int:
        h = _uri_hash(uri, issuer)
        async with translate_errors():
            result = await self._read(
                keys=[self._keys.remote_list_data(h), self._keys.remote_list_bits(h)], args=[idx]
            )
        if result == -1:
            raise CacheMiss()
        if result == -2:
            raise IndexOutOfRange()
        return int(result)

    async def put(
        self, uri: str, *, bits: int, data: bytes, seconds: int, issuer: str = ""
    ) -> None:
        if seconds <= 0:
            return
        h = _uri_hash(uri, issuer)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.remote_list_data(h), data, ex=seconds)
            pipe.set(self._keys.remote_list_bits(h), bits, ex=seconds)
            await pipe.execute()
