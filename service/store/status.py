"""Status lists and credential records in Redis.

Each status list is a Redis string of 2-bit entries in the Token Status List layout (see
:mod:`service.core.status_list`), pre-sized to its full length so the published list never
reveals how many credentials exist. Beside it: an allocation bitmap (an index is handed out
once, ever), a small metadata hash, and one record per credential holding only what status
management needs: index, type, issue and expiry times, signing ``kid``, and the API client it
belongs to (whose alone it is to change). No personal claim.

A credential id is ``<list id>.<random serial>``: the list id routes every operation on the
credential to its list's hash slot, so each operation is one atomic script on one slot, and
the serial is unrelated to the index, which stays unpredictable.

Every operation is a single round trip (allocation needs more only when it starts or fills a
list); every Redis failure becomes ``StoreUnavailable``.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Final, cast

import redis.asyncio as aioredis

from service.core.status_list import StatusValue, redis_offset
from service.errors import (
    ChangeNotReplicated,
    CredentialNotFound,
    StatusConflict,
    StoreUnavailable,
)
from service.store.connection import KeySpace, translate_errors
from service.store.replication import Replication
from service.store.round_trip import ScriptCall

__all__ = [
    "CredentialRecord",
    "ListSnapshot",
    "StatusListLost",
    "StatusStore",
    "UnknownStatusEntry",
]

BITS: Final = 2
_LIST_ID = re.compile(r"^[0-9a-f]{12}$")
_CREDENTIAL_ID = re.compile(r"^([0-9a-f]{12})\.([A-Za-z0-9_-]{22})$")
#: Random indices are tried this many at a time; with lists at most 3/4 full, 16 misses in a
#: row happen once in 100 calls, and the call is simply repeated.
_CANDIDATES: Final = 16
_MAX_FILL: Final = 0.75

# Offset arithmetic mirrors core.status_list.redis_offset for 2-bit entries; a test holds
# the two together.
_LUA_OFFSET = """
local function offset_of(idx)
  local pos = idx * 2
  return math.floor(pos / 8) * 8 + (8 - pos % 8 - 2)
end
"""

_CREATE_LIST = """
if redis.call('HSETNX', KEYS[1], 'size', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'bits', 2, 'allocated', 0, 'created_at', ARGV[2])
local size = tonumber(ARGV[1])
redis.call('SETRANGE', KEYS[2], math.floor(size * 2 / 8) - 1, '\\0')
redis.call('SETRANGE', KEYS[3], math.ceil(size / 8) - 1, '\\0')
return 1
"""

_ALLOCATE = """
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
if not size then return -1 end
local allocated = tonumber(redis.call('HGET', KEYS[1], 'allocated'))
if allocated >= math.floor(size * tonumber(ARGV[1])) then return -2 end
for i = 9, #ARGV do
  local idx = tonumber(ARGV[i])
  if idx < size and redis.call('SETBIT', KEYS[2], idx, 1) == 0 then
    redis.call('HINCRBY', KEYS[1], 'allocated', 1)
    redis.call('HSET', KEYS[3], 'idx', idx, 'vct', ARGV[2], 'iat', ARGV[3], 'exp', ARGV[4],
               'kid', ARGV[5], 'changed_at', ARGV[6], 'client', ARGV[8])
    redis.call('EXPIREAT', KEYS[3], ARGV[7])
    return idx
  end
end
return -3
"""

# Points "current" at the new list ARGV[2] only while it still points at ARGV[1] (or nowhere):
# of several workers that start or fill a list at the same moment, one moves "current" and the
# others follow it, instead of each keeping a list of its own.
_SET_CURRENT = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
return ARGV[2]
"""

# A list whose metadata is there but whose bits are not was lost (a deleted key, a partial
# restore): BITFIELD would read a missing string as zeros, that is "valid", so it answers -3.
_STATUS_OF = """
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
if not size then return -1 end
if tonumber(ARGV[1]) >= size then return -2 end
if redis.call('EXISTS', KEYS[2]) == 0 then return -3 end
return redis.call('BITFIELD', KEYS[2], 'GET', 'u2', ARGV[2])[1]
"""

_READ_RECORD = (
    _LUA_OFFSET
    + """
local r = redis.call('HMGET', KEYS[1], 'idx', 'vct', 'iat', 'exp', 'kid', 'changed_at', 'client')
if not r[1] then return nil end
if ARGV[1] ~= '' and r[7] ~= ARGV[1] then return nil end
local status = redis.call('BITFIELD', KEYS[2], 'GET', 'u2', offset_of(tonumber(r[1])))[1]
return {r[1], r[2], r[3], r[4], r[5], r[6], status}
"""
)

# Revoked (1) is final; any other state may move to any state. Repeating the current state
# succeeds and changes nothing, so a retried request is harmless.
_CHANGE = (
    _LUA_OFFSET
    + """
local idx = redis.call('HGET', KEYS[1], 'idx')
if not idx then return -1 end
-- Another client's credential is answered as a missing one: its existence is not told.
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'client') ~= ARGV[3] then return -1 end
local offset = offset_of(tonumber(idx))
local current = redis.call('BITFIELD', KEYS[2], 'GET', 'u2', offset)[1]
local target = tonumber(ARGV[1])
if current == target then
  -- Nothing to change, but write (the same value) anyway: a WAIT after this script then
  -- covers every earlier write on this master, such as the first, unconfirmed try of it.
  redis.call('HSET', KEYS[1], 'changed_at', redis.call('HGET', KEYS[1], 'changed_at'))
  return current
end
if current == 1 then return -2 end
redis.call('BITFIELD', KEYS[2], 'SET', 'u2', offset, target)
redis.call('HSET', KEYS[1], 'changed_at', ARGV[2])
redis.call('HINCRBY', KEYS[3], 'version', 1)
return target
"""
)

# The list's version: bumped by every change of an entry (in the same script as the change),
# so a publisher can tell in one small read whether the token it holds is still the list.
# -1: unknown list, or its entries are gone.
_LIST_VERSION = """
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HEXISTS', KEYS[1], 'size') == 0 then
  return -1
end
return tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
"""

# The list's bytes and the version they are, read together.
_SNAPSHOT = """
local data = redis.call('GET', KEYS[2])
if not data or redis.call('HEXISTS', KEYS[1], 'size') == 0 then return nil end
return {tonumber(redis.call('HGET', KEYS[1], 'version') or '0'), data}
"""


class UnknownStatusEntry(Exception):
    """The (list, index) pair is not one this store holds."""


class StatusListLost(Exception):
    """The list is known but its entries are gone from Redis: no answer can be given, and
    none may be guessed (an absent string would read as all "valid")."""


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    """A status list's bytes (Token Status List layout) and the version they are."""

    list_id: str
    version: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    credential_id: str
    list_id: str
    idx: int
    vct: str
    issued_at: int
    expires_at: int
    kid: str
    status: StatusValue
    changed_at: int


class StatusStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        list_size: int,
        retention_seconds: int = 365 * 86_400,
        replication: Replication | None = None,
    ) -> None:
        self._redis = redis
        #: Issuances and status changes wait for replicas through it (store.replication).
        self._replication = replication or Replication(redis)
        self._keys = keys
        self._list_size = list_size
        # A record outlives its credential by this much, then goes: an expired credential
        # needs no status management, and records must not pile up forever. Its status-list
        # entry stays set and is never handed out again.
        self._retention = retention_seconds
        self._current: str | None = None
        self._create_list = redis.register_script(_CREATE_LIST)
        self._set_current = redis.register_script(_SET_CURRENT)
        self._allocate = redis.register_script(_ALLOCATE)
        self._status_of = redis.register_script(_STATUS_OF)
        self._read_record = redis.register_script(_READ_RECORD)
        self._change = redis.register_script(_CHANGE)
        self._list_version = redis.register_script(_LIST_VERSION)
        self._snapshot = redis.register_script(_SNAPSHOT)

    @staticmethod
    def parse_credential_id(credential_id: str) -> tuple[str, str]:
        match = _CREDENTIAL_ID.fullmatch(credential_id)
        if match is None:
            raise CredentialNotFound()
        return match.group(1), match.group(2)

    @staticmethod
    def is_list_id(list_id: str) -> bool:
        return _LIST_ID.fullmatch(list_id) is not None

    async def reserve(
        self, *, vct: str, issued_at: int, expires_at: int, kid: str, client: str = ""
    ) -> CredentialRecord:
        """Allocate a fresh random status index and record the credential that will use it,
        owned by ``client`` (the API client that issued it; empty: only an admin may change
        it)."""
        async with translate_errors():
            for _ in range(64):
                list_id = self._current or await self._current_or_new_list()
                serial = secrets.token_urlsafe(16)
                candidates = [secrets.randbelow(self._list_size) for _ in range(_CANDIDATES)]
                result, kept = await self._replication.run(
                    self._allocate,
                    keys=[
                        self._keys.status_meta(list_id),
                        self._keys.status_used(list_id),
                        self._keys.credential(list_id, serial),
                    ],
                    args=[
                        _MAX_FILL,
                        vct,
                        issued_at,
                        expires_at,
                        kid,
                        issued_at,
                        expires_at + self._retention,
                        client,
                        *candidates,
                    ],
                )
                if result >= 0 and not kept:
                    # The index may be lost in a failover; if it is kept, no credential
                    # ever names it. Nothing is signed: the caller is told to repeat.
                    raise ChangeNotReplicated()
                if result >= 0:
                    self._current = list_id
                    return CredentialRecord(
                        credential_id=f"{list_id}.{serial}",
                        list_id=list_id,
                        idx=int(result),
                        vct=vct,
                        issued_at=issued_at,
                        expires_at=expires_at,
                        kid=kid,
                        status=StatusValue.VALID,
                        changed_at=issued_at,
                    )
                if result in (-1, -2):  # list gone or full: move on to another one
                    await self._retire(list_id)
                # -3: every candidate was taken; draw again
        raise StoreUnavailable("No status index could be allocated.")

    async def _current_or_new_list(self) -> str:
        current = cast("bytes | None", await self._redis.get(self._keys.current_list()))
        if current is not None:
            self._current = current.decode("ascii")
            return self._current
        return await self._new_list(replacing="")

    async def _retire(self, list_id: str) -> None:
        self._current = None
        current = cast("bytes | None", await self._redis.get(self._keys.current_list()))
        if current is None or current.decode("ascii") == list_id:
            await self._new_list(replacing=list_id)

    async def _new_list(self, *, replacing: str) -> str:
        """Create a list and make it current, unless another worker has just moved "current"
        off ``replacing``: then drop the new list (nobody knows it) and follow theirs."""
        list_id = secrets.token_hex(6)
        list_keys = [
            self._keys.status_meta(list_id),
            self._keys.status_bits(list_id),
            self._keys.status_used(list_id),
        ]
        await self._create_list(keys=list_keys, args=[self._list_size, int(time.time())])
        current: str = (
            await self._set_current(
                keys=[self._keys.current_list(), self._keys.all_lists()], args=[replacing, list_id]
            )
        ).decode("ascii")
        if current != list_id:
            await self._redis.delete(*list_keys)
        self._current = current
        return current

    async def status_of(self, list_id: str, idx: int) -> StatusValue:
        """The entry's status, read in one round trip. Raises UnknownStatusEntry, or
        StatusListLost when the list's entries are missing from Redis."""
        call = self.status_call(list_id, idx)
        async with translate_errors():
            result = await call.script(keys=call.keys, args=call.args)
        return self.read_status(result)

    def status_call(self, list_id: str, idx: int) -> ScriptCall:
        """The lookup of one entry, to send with others (:mod:`service.store.round_trip`);
        :meth:`read_status` reads its answer. Raises UnknownStatusEntry for an id or index
        that cannot be one of this store's."""
        if idx < 0 or not self.is_list_id(list_id):
            raise UnknownStatusEntry()
        return ScriptCall(
            self._status_of,
            (self._keys.status_meta(list_id), self._keys.status_bits(list_id)),
            (idx, redis_offset(idx, BITS)),
        )

    @staticmethod
    def read_status(result: int) -> StatusValue:
        if result == -3:
            raise StatusListLost()
        if result < 0:
            raise UnknownStatusEntry()
        return StatusValue(result)

    async def get(self, credential_id: str, *, owner: str | None = None) -> CredentialRecord:
        """The credential's record; with ``owner``, only if that client issued it."""
        list_id, serial = self.parse_credential_id(credential_id)
        async with translate_errors():
            row = await self._read_record(
                keys=[self._keys.credential(list_id, serial), self._keys.status_bits(list_id)],
                args=[owner or ""],
            )
        if row is None:
            raise CredentialNotFound()
        idx, vct, iat, exp, kid, changed_at, status = row
        return CredentialRecord(
            credential_id=credential_id,
            list_id=list_id,
            idx=int(idx),
            vct=vct.decode("utf-8"),
            issued_at=int(iat),
            expires_at=int(exp),
            kid=kid.decode("ascii"),
            status=StatusValue(int(status)),
            changed_at=int(changed_at),
        )

    async def change(
        self, credential_id: str, target: StatusValue, *, now: int, owner: str | None = None
    ) -> StatusValue:
        """Move a credential to ``target``; acknowledged only once Redis has applied it and
        the replicas Replication asks for hold it (ChangeNotReplicated otherwise). With
        ``owner``, only a credential that client issued (another is ``CredentialNotFound``),
        checked in the same script as the change."""
        list_id, serial = self.parse_credential_id(credential_id)
        async with translate_errors():
            result, kept = await self._replication.run(
                self._change,
                keys=[
                    self._keys.credential(list_id, serial),
                    self._keys.status_bits(list_id),
                    self._keys.status_meta(list_id),
                ],
                args=[int(target), now, owner or ""],
            )
        if result == -1:
            raise CredentialNotFound()
        if result == -2:
            raise StatusConflict("A revoked credential stays revoked.")
        if not kept:
            raise ChangeNotReplicated()
        return StatusValue(result)

    async def list_version(self, list_id: str) -> int | None:
        """The list's change counter, or None for an unknown list or one whose entries are
        gone. One small round trip: what a publisher asks before serving a token it holds."""
        if not self.is_list_id(list_id):
            return None
        async with translate_errors():
            version = await self._list_version(
                keys=[self._keys.status_meta(list_id), self._keys.status_bits(list_id)]
            )
        return None if version < 0 else int(version)

    async def snapshot(self, list_id: str) -> ListSnapshot | None:
        """The list's bytes with their version, read atomically; None if unknown or lost."""
        if not self.is_list_id(list_id):
            return None
        async with translate_errors():
            row = await self._snapshot(
                keys=[self._keys.status_meta(list_id), self._keys.status_bits(list_id)]
            )
        if row is None:
            return None
        return ListSnapshot(list_id=list_id, version=int(row[0]), data=bytes(row[1]))

    async def list_bytes(self, list_id: str) -> bytes | None:
        """The raw list as published (Token Status List byte order), or None if unknown."""
        if not self.is_list_id(list_id):
            return None
        async with translate_errors():
            data = cast("bytes | None", await self._redis.get(self._keys.status_bits(list_id)))
        return data
