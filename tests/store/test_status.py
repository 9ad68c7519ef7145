"""StatusStore against a real redis-server: allocation, rollover, concurrency, transitions,
bit layout, durability and failing closed."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import secrets
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pytest
import redis

from service.core.status_list import StatusValue, get_status, redis_offset, set_status
from service.errors import CredentialNotFound, StatusConflict, StoreUnavailable
from service.settings import Settings
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis
from service.store.status import _LUA_OFFSET, CredentialRecord, StatusStore, UnknownStatusEntry

from .helpers import RECORD_FIELDS, dump_under, keys_under, run_status, url_of

ROOT = Path(__file__).resolve().parents[2]
VCT = "https://issuer.example/types/national-id"
KID = "kid-2024-01"
# In the future: a record is kept until its credential's expiry plus a retention period.
IAT = 2_000_000_000
EXP = IAT + 365 * 86400

VALID = StatusValue.VALID
REVOKED = StatusValue.INVALID
SUSPENDED = StatusValue.SUSPENDED
APP = StatusValue.APPLICATION_SPECIFIC


def _members(client: redis.Redis, key: str) -> set[bytes]:
    # The test client answers bytes; redis-py's types cannot know it.
    return cast("set[bytes]", client.smembers(key))


async def _reserve_many(store: StatusStore, count: int) -> list[CredentialRecord]:
    return [
        await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID) for _ in range(count)
    ]


def _reserve(
    settings: Settings, count: int, *, list_size: int | None = None
) -> list[CredentialRecord]:
    return run_status(
        url_of(settings),
        settings.redis_prefix,
        lambda store: _reserve_many(store, count),
        list_size=list_size or settings.status_list_size,
    )


# --- allocation ----------------------------------------------------------------------------


def test_reserve_gives_distinct_unpredictable_indices_spread_over_the_list(
    settings: Settings,
) -> None:
    size = settings.status_list_size
    records = _reserve(settings, 1000)
    indices = [r.idx for r in records]

    assert len(set(indices)) == 1000
    assert all(0 <= i < size for i in indices)
    assert len({r.list_id for r in records}) == 1  # 1000 < 3/4 of 4096: no rollover yet
    # A counter would hand out 0, 1, 2, ... in issuance order.
    assert indices != sorted(indices)
    assert set(indices) != set(range(1000))
    successors = sum(1 for a, b in itertools.pairwise(indices) if b == a + 1)
    assert successors < 50
    # Uniform over the whole list, not clustered at its start.
    assert min(indices) < size // 8
    assert max(indices) >= size - size // 8
    assert sum(1 for i in indices if i >= size // 2) > 300


def test_credential_record_holds_only_status_management_fields(
    settings: Settings, redis_client: redis.Redis
) -> None:
    records = _reserve(settings, 50)
    keys = KeySpace(settings.redis_prefix)
    for record in records:
        list_id, serial = StatusStore.parse_credential_id(record.credential_id)
        assert list_id == record.list_id
        stored = redis_client.hgetall(keys.credential(list_id, serial))
        assert set(stored) == RECORD_FIELDS
        assert stored == {
            b"idx": str(record.idx).encode(),
            b"vct": VCT.encode(),
            b"iat": str(IAT).encode(),
            b"exp": str(EXP).encode(),
            b"kid": KID.encode(),
            b"changed_at": str(IAT).encode(),
            b"client": b"",
        }
    # Nothing else was written: only lists, their bitmaps and metadata, and those records.
    prefix = re.escape(settings.redis_prefix)
    allowed = re.compile(
        rf"^{prefix}:(\{{lists\}}:(current|all)"
        rf"|\{{sl:[0-9a-f]{{12}}\}}:(bits|used|meta|cred:[A-Za-z0-9_-]{{22}}))$"
    )
    stray = [
        k for k in keys_under(redis_client, settings.redis_prefix) if not allowed.match(k.decode())
    ]
    assert stray == []


def test_get_returns_what_reserve_recorded(settings: Settings) -> None:
    async def go(store: StatusStore) -> tuple[CredentialRecord, CredentialRecord]:
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        return record, await store.get(record.credential_id)

    reserved, fetched = run_status(url_of(settings), settings.redis_prefix, go)
    assert fetched == reserved
    assert fetched.status is VALID


def test_published_list_has_full_size_after_first_reservation(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def go(store: StatusStore) -> tuple[CredentialRecord, bytes | None, bytes | None]:
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        return (
            record,
            await store.list_bytes(record.list_id),
            await store.list_bytes("0123456789ab"),
        )

    record, data, unknown = run_status(url_of(settings), settings.redis_prefix, go)
    assert data == bytes(settings.status_list_size * 2 // 8)  # full length, all VALID
    assert unknown is None
    meta = redis_client.hgetall(KeySpace(settings.redis_prefix).status_meta(record.list_id))
    assert meta[b"size"] == str(settings.status_list_size).encode()
    assert meta[b"bits"] == b"2"
    assert meta[b"allocated"] == b"1"


# --- rollover ------------------------------------------------------------------------------


def test_full_list_rolls_over_and_old_list_hands_out_no_more_indices(
    settings: Settings, redis_client: redis.Redis
) -> None:
    size = 1024
    cap = size * 3 // 4
    keys = KeySpace(settings.redis_prefix)

    async def go() -> tuple[list[CredentialRecord], list[CredentialRecord]]:
        client = connect(url_of(settings))
        try:
            store = StatusStore(client, keys, list_size=size)
            # A second store (another worker) caches the first list before it fills up.
            stale = StatusStore(client, keys, list_size=size)
            issued = await _reserve_many(store, 1)
            issued += await _reserve_many(stale, 1)
            issued += await _reserve_many(store, 2 * cap + 50)
            late = await _reserve_many(stale, 20)
            return issued, late
        finally:
            await client.aclose()

    issued, late = asyncio.run(go())
    everything = issued + late
    pairs = [(r.list_id, r.idx) for r in everything]
    assert len(set(pairs)) == len(pairs)
    assert len({r.credential_id for r in everything}) == len(everything)
    assert all(0 <= r.idx < size for r in everything)

    order = list(dict.fromkeys(r.list_id for r in issued))
    assert len(order) == 3
    first, second, third = order
    per_list = Counter(r.list_id for r in everything)
    assert per_list[first] == cap
    assert per_list[second] == cap
    # Lists are used one after the other: once a list is left, it never comes back.
    list_sequence = [r.list_id for r in issued]
    assert list_sequence == sorted(list_sequence, key=order.index)
    # The stale worker noticed the rollover and followed the current list.
    assert {r.list_id for r in late} == {third}
    assert redis_client.get(keys.current_list()) == third.encode()
    assert redis_client.smembers(keys.all_lists()) == {
        first.encode(),
        second.encode(),
        third.encode(),
    }
    for full in (first, second):
        assert redis_client.hget(keys.status_meta(full), "allocated") == str(cap).encode()
        assert redis_client.bitcount(keys.status_used(full)) == cap
        assert redis_client.strlen(keys.status_bits(full)) == size * 2 // 8


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_first_reservations_in_one_process_share_one_list(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def go(store: StatusStore) -> list[CredentialRecord]:
        return list(
            await asyncio.gather(
                *(store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID) for _ in range(20))
            )
        )

    records = run_status(url_of(settings), settings.redis_prefix, go)
    (list_id,) = {r.list_id for r in records}  # not 20 lists holding one credential each
    assert len({r.idx for r in records}) == 20
    keys = KeySpace(settings.redis_prefix)
    assert redis_client.smembers(keys.all_lists()) == {list_id.encode()}
    assert redis_client.get(keys.current_list()) == list_id.encode()
    # Lists started and dropped by the losers of the race leave nothing behind.
    bits = {k for k in keys_under(redis_client, settings.redis_prefix) if k.endswith(b":bits")}
    assert bits == {keys.status_bits(list_id).encode()}


def test_concurrent_reservations_at_rollover_start_a_single_new_list(
    settings: Settings, redis_client: redis.Redis
) -> None:
    size = 1024
    cap = size * 3 // 4

    async def go(store: StatusStore) -> list[CredentialRecord]:
        records = await _reserve_many(store, cap - 5)
        records += await asyncio.gather(
            *(store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID) for _ in range(30))
        )
        return records

    records = run_status(url_of(settings), settings.redis_prefix, go, list_size=size)
    per_list = Counter(r.list_id for r in records)
    assert sorted(per_list.values()) == [25, cap]
    assert len({(r.list_id, r.idx) for r in records}) == len(records)
    keys = KeySpace(settings.redis_prefix)
    assert {k.decode() for k in _members(redis_client, keys.all_lists())} == set(per_list)


_WORKER = r"""
import asyncio, json, sys
from service.store.connection import KeySpace, connect
from service.store.status import StatusStore

async def main(url, prefix, count, size):
    client = connect(url)
    store = StatusStore(client, KeySpace(prefix), list_size=size)
    await client.ping()
    print("ready", flush=True)
    sys.stdin.readline()
    async def some(n):
        return [await store.reserve(vct="v", issued_at=1, expires_at=2, kid="k")
                for _ in range(n)]
    batches = await asyncio.gather(*(some(count // 5) for _ in range(5)))
    await client.aclose()
    print(json.dumps([[r.list_id, r.idx, r.credential_id] for b in batches for r in b]))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def _reserve_from_processes(
    settings: Settings, *, processes: int, each: int, list_size: int, timeout: float = 60
) -> list[tuple[str, int, str]]:
    """``processes`` OS processes reserving ``each`` at the same moment on one prefix."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [url_of(settings), settings.redis_prefix, str(each), str(list_size)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", _WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for worker in workers:  # every process connected before any reserves
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", worker.stderr
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=timeout)
            assert worker.returncode == 0, err
            results += [tuple(row) for row in json.loads(out)]
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.communicate()


def test_concurrent_processes_never_share_an_index(
    settings: Settings, redis_client: redis.Redis
) -> None:
    results = _reserve_from_processes(settings, processes=4, each=250, list_size=4096)
    assert len(results) == 1000
    pairs = [(list_id, idx) for list_id, idx, _ in results]
    assert len(set(pairs)) == 1000
    assert len({cid for _, _, cid in results}) == 1000
    (list_id,) = {list_id for list_id, _ in pairs}
    keys = KeySpace(settings.redis_prefix)
    assert redis_client.hget(keys.status_meta(list_id), "allocated") == b"1000"
    assert redis_client.bitcount(keys.status_used(list_id)) == 1000


def test_concurrent_processes_rolling_over_together_never_share_an_index(
    settings: Settings, redis_client: redis.Redis
) -> None:
    size = 1024  # 4 x 250 = 1000 > 768: the list fills up while all four are reserving
    results = _reserve_from_processes(settings, processes=4, each=250, list_size=size)
    pairs = [(list_id, idx) for list_id, idx, _ in results]
    assert len(pairs) == 1000
    assert len(set(pairs)) == 1000
    keys = KeySpace(settings.redis_prefix)
    per_list = Counter(list_id for list_id, _ in pairs)
    # All four moved together from the full list to one new list.
    assert sorted(per_list.values()) == [1000 - size * 3 // 4, size * 3 // 4]
    assert {k.decode() for k in _members(redis_client, keys.all_lists())} == set(per_list)
    for list_id, count in per_list.items():
        assert count <= size * 3 // 4
        assert redis_client.hget(keys.status_meta(list_id), "allocated") == str(count).encode()
        assert redis_client.bitcount(keys.status_used(list_id)) == count
    assert sum(per_list.values()) == 1000


# --- transitions ---------------------------------------------------------------------------


def test_status_moves_valid_suspended_valid_revoked_and_revoked_is_final(
    settings: Settings,
) -> None:
    async def go(store: StatusStore) -> None:
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        cid = record.credential_id

        assert await store.change(cid, SUSPENDED, now=IAT + 1) is SUSPENDED
        assert (await store.get(cid)).status is SUSPENDED
        assert await store.change(cid, VALID, now=IAT + 2) is VALID
        assert (await store.get(cid)).status is VALID
        assert await store.change(cid, REVOKED, now=IAT + 3) is REVOKED
        revoked = await store.get(cid)
        assert revoked.status is REVOKED
        assert revoked.changed_at == IAT + 3
        before = await store.list_bytes(record.list_id)

        for target in (VALID, SUSPENDED, APP):
            with pytest.raises(StatusConflict):
                await store.change(cid, target, now=IAT + 4)
            assert await store.list_bytes(record.list_id) == before
            assert await store.get(cid) == revoked
        assert await store.status_of(record.list_id, record.idx) is REVOKED

    run_status(url_of(settings), settings.redis_prefix, go)


def test_repeating_the_current_status_is_accepted_and_changes_nothing(
    settings: Settings,
) -> None:
    async def go(store: StatusStore) -> None:
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        cid = record.credential_id
        assert await store.change(cid, VALID, now=IAT + 1) is VALID
        assert (await store.get(cid)).changed_at == IAT  # nothing happened
        assert await store.change(cid, SUSPENDED, now=IAT + 2) is SUSPENDED
        suspended = await store.get(cid)
        data = await store.list_bytes(record.list_id)
        assert await store.change(cid, SUSPENDED, now=IAT + 3) is SUSPENDED
        assert await store.get(cid) == suspended
        assert await store.list_bytes(record.list_id) == data
        assert await store.change(cid, REVOKED, now=IAT + 4) is REVOKED
        assert await store.change(cid, REVOKED, now=IAT + 5) is REVOKED  # a retried revoke
        assert (await store.get(cid)).changed_at == IAT + 4

    run_status(url_of(settings), settings.redis_prefix, go)


MALFORMED_IDS = [
    "",
    "0123456789ab",
    "0123456789ab.",
    "0123456789AB.AAAAAAAAAAAAAAAAAAAAAA",
    "0123456789ab.AAAAAAAAAAAAAAAAAAAAA",  # serial one short
    "0123456789ab.AAAAAAAAAAAAAAAAAAAAAAA",  # serial one long
    "0123456789ab.AAAAAAAAAAAAAAAAAAAA*A",
    "0123456789ab:AAAAAAAAAAAAAAAAAAAAAA",
    "../0123456789.AAAAAAAAAAAAAAAAAAAAAA",
    "0123456789ab.AAAAAAAAAAAAAAAAAAAAAA\n",
    " 0123456789ab.AAAAAAAAAAAAAAAAAAAAAA",
    "0123456789ab.AAAAAAAA}AAAAAAAAAAAAA",
]


def test_unknown_and_malformed_credential_ids_are_not_found_and_write_nothing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def go(store: StatusStore) -> None:
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        before = dump_under(redis_client, settings.redis_prefix)
        absent = [
            f"{record.list_id}.{secrets.token_urlsafe(16)}",  # known list, unknown serial
            f"{secrets.token_hex(6)}.{secrets.token_urlsafe(16)}",  # unknown list
        ]
        for cid in absent + MALFORMED_IDS + [record.credential_id + "\n"]:
            for target in (VALID, REVOKED, SUSPENDED):
                with pytest.raises(CredentialNotFound):
                    await store.change(cid, target, now=IAT + 1)
            with pytest.raises(CredentialNotFound):
                await store.get(cid)
        assert dump_under(redis_client, settings.redis_prefix) == before
        assert (await store.get(record.credential_id)).status is VALID

    run_status(url_of(settings), settings.redis_prefix, go)


# --- bit layout ----------------------------------------------------------------------------


def test_lua_offset_matches_core_redis_offset(redis_client: redis.Redis) -> None:
    indices = [
        *range(64),
        *range(4090, 4100),
        (1 << 20) - 1,
        (1 << 24) - 1,
        *(secrets.randbelow(1 << 24) for _ in range(200)),
    ]
    script = (
        _LUA_OFFSET
        + """
local out = {}
for i = 1, #ARGV do out[i] = offset_of(tonumber(ARGV[i])) end
return out
"""
    )
    lua = redis_client.eval(script, 0, *indices)
    assert lua == [redis_offset(i, 2) for i in indices]


def test_changed_statuses_land_where_the_token_status_list_codec_reads_them(
    settings: Settings,
) -> None:
    size = settings.status_list_size
    cycle = [REVOKED, SUSPENDED, APP, VALID]

    async def go(store: StatusStore) -> None:
        records: list[CredentialRecord] = []
        # Enough credentials to cover every position of an entry inside its byte.
        while min(Counter(r.idx % 4 for r in records).get(k, 0) for k in range(4)) < 4:
            assert len(records) < 500
            records += await _reserve_many(store, 1)
        (list_id,) = {r.list_id for r in records}
        expected = bytearray(size * 2 // 8)
        wanted: dict[int, StatusValue] = {}
        for n, record in enumerate(records):
            target = cycle[n % 4]
            if target is VALID:  # a write of 0 over a set entry must clear both bits
                await store.change(record.credential_id, APP, now=IAT + 1)
            await store.change(record.credential_id, target, now=IAT + 2)
            wanted[record.idx] = target
            set_status(expected, record.idx, 2, int(target))

        data = await store.list_bytes(list_id)
        assert data is not None
        for idx, target in wanted.items():
            assert get_status(data, idx, 2) == target
            assert await store.status_of(list_id, idx) is target
        assert data == bytes(expected)  # and nothing else was touched
        for record in records:
            assert (await store.get(record.credential_id)).status is wanted[record.idx]
        untouched = next(i for i in range(size) if i not in wanted)
        assert await store.status_of(list_id, untouched) is VALID

    run_status(url_of(settings), settings.redis_prefix, go)


def test_status_of_an_unknown_list_or_index_outside_the_list_is_unknown_entry(
    settings: Settings,
) -> None:
    size = settings.status_list_size

    async def go(store: StatusStore) -> None:
        record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        assert await store.status_of(record.list_id, size - 1) is VALID
        for list_id, idx in [
            (secrets.token_hex(6), 0),  # well-formed, never created
            (record.list_id, size),
            (record.list_id, size + 1),
            (record.list_id, 1 << 40),
            (record.list_id, -1),
            ("", 0),
            ("NOT-A-LIST", 0),
            (record.list_id.upper(), 0),
            (record.list_id + "0", 0),
            (record.list_id + "\n", 0),
        ]:
            with pytest.raises(UnknownStatusEntry):
                await store.status_of(list_id, idx)

    run_status(url_of(settings), settings.redis_prefix, go)


# --- durability ----------------------------------------------------------------------------


def test_acknowledged_revocation_survives_sigkill_and_restart(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path / "durable", durable=True).start()
    try:
        prefix = "durable"

        async def issue(store: StatusStore) -> tuple[CredentialRecord, CredentialRecord]:
            revoked, suspended = await _reserve_many(store, 2)
            assert await store.change(revoked.credential_id, REVOKED, now=IAT + 1) is REVOKED
            assert await store.change(suspended.credential_id, SUSPENDED, now=IAT + 1) is (
                SUSPENDED
            )
            return revoked, suspended

        revoked, suspended = run_status(embedded.url, prefix, issue)
        first_pid = embedded.pid
        embedded.kill()  # no chance to flush anything: only what was fsynced survives
        embedded.start()
        assert embedded.pid != first_pid

        async def read(store: StatusStore) -> None:
            assert await store.status_of(revoked.list_id, revoked.idx) is REVOKED
            assert (await store.get(revoked.credential_id)).status is REVOKED
            assert await store.status_of(suspended.list_id, suspended.idx) is SUSPENDED
            data = await store.list_bytes(revoked.list_id)
            assert data is not None
            assert get_status(data, revoked.idx, 2) == REVOKED
            with pytest.raises(StatusConflict):
                await store.change(revoked.credential_id, VALID, now=IAT + 2)
            # The allocation bitmap survived too: no index is handed out twice.
            more = await _reserve_many(store, 20)
            assert {r.idx for r in more}.isdisjoint({revoked.idx, suspended.idx})

        run_status(embedded.url, prefix, read)
    finally:
        embedded.stop()


# --- failing closed ------------------------------------------------------------------------


def _closed_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_every_operation_raises_store_unavailable_when_redis_is_unreachable(
    where: str,
) -> None:
    url = (
        "unix:///nonexistent/thiqa.sock"
        if where == "unix"
        else f"redis://127.0.0.1:{_closed_tcp_port()}/0"
    )
    cid = "0123456789ab.AAAAAAAAAAAAAAAAAAAAAA"

    async def go(store: StatusStore) -> None:
        with pytest.raises(StoreUnavailable):
            await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
        with pytest.raises(StoreUnavailable):
            await store.status_of("0123456789ab", 0)
        with pytest.raises(StoreUnavailable):
            await store.get(cid)
        for target in (REVOKED, VALID):
            with pytest.raises(StoreUnavailable):
                await store.change(cid, target, now=IAT)
        with pytest.raises(StoreUnavailable):
            await store.list_bytes("0123456789ab")

    run_status(url, "down", go)


def test_a_record_is_forgotten_a_retention_period_after_its_credential_expires(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def go(_: StatusStore) -> tuple[str, str]:
        client = connect(url_of(settings))
        try:
            store = StatusStore(
                client, KeySpace(settings.redis_prefix), list_size=4096, retention_seconds=86_400
            )
            record = await store.reserve(vct=VCT, issued_at=IAT, expires_at=EXP, kid=KID)
            return record.list_id, record.credential_id.split(".")[1]
        finally:
            await client.aclose()

    list_id, serial = run_status(url_of(settings), settings.redis_prefix, go)
    key = KeySpace(settings.redis_prefix).credential(list_id, serial)
    import time

    remaining = redis_client.ttl(key)
    assert abs(remaining - (EXP + 86_400 - time.time())) <= 5
