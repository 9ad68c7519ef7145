"""A Redis cache of other issuers' status lists, each kept no longer than its ``ttl``.

The decoded list is stored as-is (Token Status List byte order) so an entry is read with one
``BITFIELD`` in one round trip, whatever the list's size; the list is fetched again only when
its cache entry has expired.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from .connection import KeySpace, translate_errors

__all__ = ["CacheMiss", "IndexOutOfRange", "RemoteListCache"]

_READ = """
local bits = tonumber(redis.call('GET', KEYS[2]))
if not bits then return -1 end
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


def _uri_hash(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32]


class RemoteListCache:
    def __init__(self, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._read = redis.register_script(_READ)

    async def status_of(self, uri: str, idx: int) -> int:
        h = _uri_hash(uri)
        async with translate_errors():
            result = await self._read(
                keys=[self._keys.remote_list_data(h), self._keys.remote_list_bits(h)], args=[idx]
            )
        if result == -1:
            raise CacheMiss()
        if result == -2:
            raise IndexOutOfRange()
        return int(result)

    async def put(self, uri: str, *, bits: int, data: bytes, seconds: int) -> None:
        if seconds <= 0:
            return
        h = _uri_hash(uri)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.remote_list_data(h), data, ex=seconds)
            pipe.set(self._keys.remote_list_bits(h), bits, ex=seconds)
            await pipe.execute()

