"""AuditLog against a real redis-server: fields, refusals, trimming, reading and failure."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pytest
import redis

from service.api.server import free_port
from service.settings import Settings
from service.store.audit import AuditAction, AuditEntry, AuditLog
from service.store.connection import KeySpace, connect

from .helpers import url_of

T = TypeVar("T")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _entries(rows: object) -> list[tuple[bytes, dict[bytes, bytes]]]:
    # The test client answers bytes; redis-py's types cannot know it.
    return cast("list[tuple[bytes, dict[bytes, bytes]]]", rows)


def _run(url: str, prefix: str, action: Callable[[AuditLog], Awaitable[T]], **options: Any) -> T:
    async def go() -> T:
        client = connect(url)
        try:
            return await action(AuditLog(client, KeySpace(prefix), **options))
        finally:
            await client.aclose()

    return asyncio.run(go())


def _stream(settings: Settings) -> str:
    return KeySpace(settings.redis_prefix).audit_stream()


def test_stream_key_has_its_own_hash_tag(settings: Settings) -> None:
    # Never in a status list's {sl:...} slot: see the module docstring on Redis Cluster.
    assert _stream(settings) == f"{settings.redis_prefix}:{{audit}}:stream"


def test_an_entry_holds_exactly_the_given_fields(
    settings: Settings, redis_client: redis.Redis
) -> None:
    moment = datetime(2025, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    entry_id = _run(
        url_of(settings),
        settings.redis_prefix,
        lambda audit: audit.append(
            AuditAction.CREDENTIAL_ISSUED,
            via="api",
            client="tax-portal",
            credential_id="0123456789ab.AAAAAAAAAAAAAAAAAAAAAA",
            request_id="req-1",
            vct="https://id.example.ma/types/national-id",
            kid="k1",
        ),
        clock=lambda: moment,
    )
    rows = _entries(redis_client.xrange(_stream(settings)))
    assert [row[0].decode() for row in rows] == [entry_id]
    assert rows[0][1] == {
        b"time": b"2025-03-01T12:30:05.123Z",
        b"action": b"credential.issued",
        b"via": b"api",
        b"client": b"tax-portal",
        b"credential_id": b"0123456789ab.AAAAAAAAAAAAAAAAAAAAAA",
        b"request_id": b"req-1",
        b"vct": b"https://id.example.ma/types/national-id",
        b"kid": b"k1",
        b"result": b"ok",
    }


def test_time_is_rfc3339_utc_from_any_timezone(settings: Settings) -> None:
    entries = _run(url_of(settings), settings.redis_prefix, _append_then_tail)
    assert RFC3339_UTC.fullmatch(entries[0].time)


async def _append_then_tail(audit: AuditLog) -> list[AuditEntry]:
    await audit.append(AuditAction.KEY_ROTATED, via="cli", kid="new-kid")
    return await audit.tail(5)


@pytest.mark.parametrize(
    ("action", "values"),
    [
        ("credential.deleted", {}),  # no such action
        (AuditAction.CREDENTIAL_ISSUED, {"client": "Amina El Idrissi"}),
        (AuditAction.CREDENTIAL_ISSUED, {"credential_id": "أمينة"}),
        (AuditAction.CREDENTIAL_ISSUED, {"request_id": "x" * 65}),
        (AuditAction.CREDENTIAL_VERIFIED, {"result": ["Revoked"]}),
        (AuditAction.CREDENTIAL_VERIFIED, {"result": []}),
        (AuditAction.CREDENTIAL_VERIFIED, {"vct": "https://x.example/a b"}),
        (AuditAction.CREDENTIAL_VERIFIED, {"issuer": "https://x.example/\nforged"}),
        (AuditAction.CLIENT_ADDED, {"scopes": ["issue", "ZZ104233"]}),
        (AuditAction.KEY_REVOKED, {"via": "web"}),
    ],
)
def test_values_outside_their_field_are_refused_and_nothing_is_written(
    settings: Settings, redis_client: redis.Redis, action: str, values: dict[str, object]
) -> None:
    values = {"via": "api", **values}
    with pytest.raises(ValueError, match="audit") as refused:
        _run(url_of(settings), settings.redis_prefix, lambda audit: audit.append(action, **values))
    # The message names the field, never the value that was refused.
    for value in values.values():
        if isinstance(value, str) and value not in ("api", "cli"):
            assert value not in str(refused.value)
    assert not redis_client.exists(_stream(settings))


def test_stream_is_trimmed_to_about_max_entries(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def many(audit: AuditLog) -> None:
        for n in range(1000):
            await audit.append(AuditAction.CREDENTIAL_SUSPENDED, via="api", request_id=f"r{n}")

    _run(url_of(settings), settings.redis_prefix, many, max_entries=100)
    length = redis_client.xlen(_stream(settings))
    # "MAXLEN ~" drops whole stream nodes (100 entries each by default): never below the
    # limit, at most about a node above it.
    assert 100 <= length <= 200
    newest = _entries(redis_client.xrevrange(_stream(settings), count=1))[0][1]
    assert newest[b"request_id"] == b"r999"


def test_verifications_have_a_stream_of_their_own_and_cannot_trim_events(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def flood(audit: AuditLog) -> tuple[list[AuditEntry], list[AuditEntry]]:
        await audit.append(AuditAction.CREDENTIAL_REVOKED, via="api", credential_id="kept")
        for n in range(1000):
            await audit.append(
                AuditAction.CREDENTIAL_VERIFIED, via="api", result=["valid"], request_id=f"r{n}"
            )
        return await audit.tail(10), await audit.tail(1, verifications=True)

    events, verified = _run(url_of(settings), settings.redis_prefix, flood, max_entries=100)
    assert [(e.action, e.credential_id) for e in events] == [("credential.revoked", "kept")]
    assert [e.request_id for e in verified] == ["r999"]
    keys = KeySpace(settings.redis_prefix)
    assert keys.audit_verifications() == f"{settings.redis_prefix}:{{audit}}:verifications"
    assert 100 <= redis_client.xlen(keys.audit_verifications()) <= 200


def test_tail_is_oldest_first_and_after_reads_only_newer(settings: Settings) -> None:
    async def go(audit: AuditLog) -> tuple[list[AuditEntry], list[AuditEntry]]:
        for n in range(5):
            await audit.append(AuditAction.CREDENTIAL_REVOKED, via="api", credential_id=f"id{n}")
        tail = await audit.tail(3)
        later = await audit.after(tail[-1].id, block_ms=50)
        await audit.append(AuditAction.CLIENT_REVOKED, via="cli", client="old-app")
        return tail, later + await audit.after(tail[-1].id, block_ms=50)

    tail, newer = _run(url_of(settings), settings.redis_prefix, go)
    assert [e.credential_id for e in tail] == ["id2", "id3", "id4"]
    assert all(e.result == ("ok",) and e.via == "api" for e in tail)
    assert [(e.action, e.client, e.via) for e in newer] == [("client.revoked", "old-app", "cli")]


def test_record_on_an_unreachable_redis_says_so_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level(logging.ERROR, logger="thiqa.audit"):
        written = _run(
            url,
            "gone",
            lambda audit: audit.record(
                AuditAction.CREDENTIAL_SUSPENDED,
                via="api",
                client="tax-portal",
                credential_id="0123456789ab.AAAAAAAAAAAAAAAAAAAAAA",
                request_id="req-9",
            ),
        )
    assert written is False
    [line] = [r for r in caplog.records if r.name == "thiqa.audit"]
    assert line.getMessage() == "audit write failed: StoreUnavailable"
    # Log records carry the ``extra`` fields as attributes, which mypy cannot know.
    assert line.audit_action == "credential.suspended"  # type: ignore[attr-defined]
    assert line.credential_id == "0123456789ab.AAAAAAAAAAAAAAAAAAAAAA"  # type: ignore[attr-defined]
    assert line.request_id == "req-9"  # type: ignore[attr-defined]


def test_record_of_a_refused_value_logs_no_value(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="thiqa.audit"):
        written = _run(
            url_of(settings),
            settings.redis_prefix,
            lambda audit: audit.record(
                AuditAction.CREDENTIAL_ISSUED,
                via="api",
                client="Zyxwvut Unique",
            ),
        )
    assert written is False
    assert "Zyxwvut" not in caplog.text
    assert all("Zyxwvut" not in str(vars(r)) for r in caplog.records)
    assert not redis_client.exists(_stream(settings))
