"""A Redis cache of other issuers' status lists: bounded in time, memory and freshness.

The decoded list is stored as-is (Token Status List byte order) so an entry is read with one
``BITFIELD`` in one round trip, whatever the list's size; the list is fetched again only when
its cache entry has expired.

Every issuer has its own hash slot, holding its lists, the bytes they take (a list is cached
only while the issuer's lists fit in its budget: one issuer's lists cannot fill Redis), and
the newest ``iat`` seen for each of its list URIs. A list older than the newest one seen is
refused (:class:`StaleList`), cached or not: a list from before a revocation, replayed, must
never answer "valid" again. The newest ``iat`` is kept without expiry, one small field per
list URI the issuer signed.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from service.store.connection import KeySpace, translate_errors

__all__ = ["CacheMiss", "IndexOutOfRange", "RemoteListCache", "StaleList"]

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

# KEYS: data, bits, cached (zset: list -> expiry), sizes (hash: list -> bytes), newest (hash:
# list -> iat). ARGV: list hash, bits, data, seconds, now, budget, iat.
# -1: older than a list already seen (refused); 0: accepted, not cached; 1: cached.
_PUT = """
local newest = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '-1')
local iat = tonumber(ARGV[7])
if iat < newest then return -1 end
redis.call('HSET', KEYS[5], ARGV[1], iat)
local seconds = tonumber(ARGV[4])
if seconds <= 0 then return 0 end
local now = tonumber(ARGV[5])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('HDEL', KEYS[4], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local total = 0
local sizes = redis.call('HGETALL', KEYS[4])
for i = 1, #sizes, 2 do
  if sizes[i] ~= ARGV[1] then total = total + tonumber(sizes[i + 1]) end
end
local size = string.len(ARGV[3])
if total + size > tonumber(ARGV[6]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', seconds)
redis.call('SET', KEYS[2], ARGV[2], 'EX', seconds)
redis.call('ZADD', KEYS[3], now + seconds, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], size)
return 1
"""


class CacheMiss(Exception):
    pass


class IndexOutOfRange(Exception):
    pass


class StaleList(Exception):
    """The list's ``iat`` is older than that of a list already seen at the same URI."""


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _uri_hash(uri: str, issuer: str = "") -> str:
    # Keyed by issuer too: two issuers may publish at one host, and a list fetched and
    # verified under one issuer's keys must never answer for the other's credentials.
    return _hash(f"{issuer}\n{uri}")


class RemoteListCache:
    def __init__(self, redis: aioredis.Redis, keys: KeySpace) -> None:
        self._redis = redis
        self._keys = keys
        self._read = redis.register_script(_READ)
        self._put = redis.register_script(_PUT)

    async def status_of(self, uri: str, idx: int, *, issuer: str = "") -> int:
        i, h = _hash(issuer), _uri_hash(uri, issuer)
        async with translate_errors():
            result = await self._read(
                keys=[self._keys.remote_list_data(i, h), self._keys.remote_list_bits(i, h)],
                args=[idx],
            )
        if result == -1:
            raise CacheMiss()
        if result == -2:
            raise IndexOutOfRange()
        return int(result)

    async def put(
        self,
        uri: str,
        *,
        bits: int,
        data: bytes,
        seconds: int,
        issued_at: int,
        now: int,
        budget: int,
        issuer: str = "",
    ) -> bool:
        """Record the list's ``iat`` and cache it for ``seconds`` if the issuer's budget
        allows; True if cached. Raises :class:`StaleList` if a newer list was seen."""
        i, h = _hash(issuer), _uri_hash(uri, issuer)
        async with translate_errors():
            result = await self._put(
                keys=[
                    self._keys.remote_list_data(i, h),
                    self._keys.remote_list_bits(i, h),
                    self._keys.remote_issuer(i, "cached"),
                    self._keys.remote_issuer(i, "sizes"),
                    self._keys.remote_issuer(i, "newest"),
                ],
                args=[h, bits, data, seconds, now, budget, issued_at],
            )
        if result == -1:
            raise StaleList()
        return bool(result == 1)
