"""The audit trail: who did what to which credential, client or key, and when.

Entries go to two Redis streams in the ``{audit}`` slot, each trimmed approximately to
``THIQA_AUDIT_MAX_ENTRIES`` (``XADD MAXLEN ~``: Redis drops whole stream nodes, so trimming
costs nothing and a stream may briefly hold a little more than the limit):

* ``<prefix>:{audit}:stream``: issuance, status, client and key events;
* ``<prefix>:{audit}:verifications``: ``credential.verified`` entries.

Verifying apps make by far the most requests; in a stream of their own, no amount of
verification traffic can trim a ``credential.revoked`` or ``key.revoked`` entry away. And only
verifications whose issuer signature held are recorded: a presentation that is garbage or
forged names nobody anything can be attributed to, and is counted in the metrics
(``thiqa_verifications_unaudited_total``) instead, so junk cannot even fill the second stream.

An entry has a fixed set of fields, each checked against a narrow pattern before it is
written: there is no free-text field, so no claim value, name, birth date or national id can
end up here, whoever the caller is. For a verification the credential's id is not known (the
presentation does not carry it) and is not looked up; the entry holds the issuer, the type
and the result codes, never a claim.

Actions (:class:`AuditAction`)::

    credential.issued       credential_id, vct                          (API, issue scope)
    credential.revoked      credential_id                               (API, revoke scope)
    credential.suspended    credential_id
    credential.reinstated   credential_id
    credential.verified     issuer, vct, result (signature held only)   (API, verify scope)
    client.added            client, scopes                              (CLI)
    client.revoked          client                                      (CLI)
    key.generated           kid                                         (for key management)
    key.rotated             kid (the new active key)
    key.revoked             kid

Only completed operations are recorded (and every verification, whatever its verdict):
refused requests are in the request log and the metrics, not here, so a flood of bad
requests cannot push real entries out of the trimmed stream.

Why the stream is written *after* the operation and not inside its Lua script: a status
change runs as one script on the keys of its list's slot (``{sl:<list>}``) and the stream
lives in ``{audit}``. One script touching both is a cross-slot error on Redis Cluster, so the
entry is a separate ``XADD``. The operation has then already happened; see :meth:`record`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from service.errors import StoreUnavailable
from service.store.connection import KeySpace, translate_errors
from service.store.round_trip import send_together

__all__ = [
    "FIELD_PATTERNS",
    "LOGGED_FIELDS",
    "AuditAction",
    "AuditEntry",
    "AuditLog",
    "rfc3339",
]

log = logging.getLogger("thiqa.audit")

DEFAULT_MAX_ENTRIES: Final = 1_000_000


class AuditAction(StrEnum):
    CREDENTIAL_ISSUED = "credential.issued"
    CREDENTIAL_REVOKED = "credential.revoked"
    CREDENTIAL_SUSPENDED = "credential.suspended"
    CREDENTIAL_REINSTATED = "credential.reinstated"
    CREDENTIAL_VERIFIED = "credential.verified"
    CLIENT_ADDED = "client.added"
    CLIENT_REVOKED = "client.revoked"
    KEY_GENERATED = "key.generated"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"


# What each field may hold. Identifiers are short ASCII tokens; issuer and vct are URLs of a
# trusted issuer (printable, no spaces). Anything else is a programming error, refused with
# ValueError before a byte is written.
_TOKEN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
FIELD_PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    "via": re.compile(r"^(api|cli)$"),
    "client": re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$"),
    "credential_id": _TOKEN,
    "request_id": _TOKEN,
    "kid": re.compile(r"^[A-Za-z0-9._-]{1,128}$"),
    "scopes": re.compile(r"^[a-z]+(,[a-z]+){0,7}$"),
    "issuer": re.compile(r"^[\x21-\x7e]{1,512}$"),
    "vct": re.compile(r"^[\x21-\x7e]{1,512}$"),
}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_OPTIONAL: Final = ("client", "credential_id", "request_id", "issuer", "vct", "kid", "scopes")
#: Fields repeated in the error line when an entry cannot be written (checked the same way).
LOGGED_FIELDS: Final = frozenset({"via", "client", "credential_id", "request_id", "kid"})


def rfc3339(moment: datetime) -> str:
    """``2025-01-31T12:00:00.123Z``: RFC 3339, UTC, milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    time: str
    action: str
    via: str
    result: tuple[str, ...]
    client: str = ""
    credential_id: str = ""
    request_id: str = ""
    issuer: str = ""
    vct: str = ""
    kid: str = ""
    scopes: str = ""

    @classmethod
    def from_stream(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> AuditEntry:
        text = {k.decode("utf-8"): v.decode("utf-8") for k, v in fields.items()}
        known = {name: text.get(name, "") for name in _OPTIONAL}
        return cls(
            id=entry_id.decode("ascii") if isinstance(entry_id, bytes) else entry_id,
            time=text.get("time", ""),
            action=text.get("action", ""),
            via=text.get("via", ""),
            result=tuple(c for c in text.get("result", "").split(",") if c),
            **known,
        )


class AuditLog:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: KeySpace,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._redis = redis
        self._key = keys.audit_stream()
        self._verifications = keys.audit_verifications()
        self._max_entries = max_entries
        self._clock = clock

    @staticmethod
    def entry_fields(
        action: AuditAction | str,
        *,
        via: str,
        result: Sequence[str] = ("ok",),
        client: str | None = None,
        credential_id: str | None = None,
        request_id: str | None = None,
        issuer: str | None = None,
        vct: str | None = None,
        kid: str | None = None,
        scopes: Iterable[str] | None = None,
        time: str,
    ) -> dict[str, str]:
        """The stream fields of one entry; ValueError if any value is not what it may be."""
        given = {
            "via": via,
            "client": client,
            "credential_id": credential_id,
            "request_id": request_id,
            "issuer": issuer,
            "vct": vct,
            "kid": kid,
            "scopes": ",".join(sorted(scopes)) if scopes is not None else None,
        }
        try:
            fields = {"time": time, "action": AuditAction(action).value}
        except ValueError:
            raise ValueError("unknown audit action") from None
        for name, value in given.items():
            if value is None or value == "":
                continue
            if not FIELD_PATTERNS[name].fullmatch(value):
                # Name the field, never the value: it may be exactly what must not be logged.
                raise ValueError(f"audit field {name} has a value it may not have")
            fields[name] = value
        codes = list(result)
        if not codes or not all(_CODE.fullmatch(code) for code in codes):
            raise ValueError("audit result must be one or more lower-case codes")
        fields["result"] = ",".join(codes)
        return fields

    async def append(self, action: AuditAction | str, **values: Any) -> str:
        """Write one entry; returns its stream id. Raises StoreUnavailable, or ValueError for
        a value outside its field's pattern (nothing is written then).

        Keyword arguments are those of :meth:`entry_fields` but ``time``: ``via`` ("api" or
        "cli"), ``result`` (codes, default ``("ok",)``), ``client``, ``credential_id``,
        ``request_id``, ``issuer``, ``vct``, ``kid``, ``scopes``. Key management calls, e.g.,
        ``await audit.append(AuditAction.KEY_ROTATED, via="cli", kid=new_kid)``.
        """
        entry = self.entry_fields(action, time=rfc3339(self._clock()), **values)
        fields: dict[FieldT, EncodableT] = dict(entry.items())
        async with translate_errors():
            entry_id = await self._redis.xadd(
                self._stream_of(action), fields, maxlen=self._max_entries, approximate=True
            )
        return entry_id.decode("ascii") if isinstance(entry_id, bytes) else str(entry_id)

    def prepare(self, action: AuditAction | str, **values: Any) -> tuple[str, dict[str, str]]:
        """The stream and fields of one entry, stamped now, to be written later with
        :meth:`append_prepared`. ValueError as for :meth:`append`."""
        fields = self.entry_fields(action, time=rfc3339(self._clock()), **values)
        return self._stream_of(action), fields

    async def append_prepared(self, entries: Sequence[tuple[str, dict[str, str]]]) -> int:
        """Write prepared entries in one round trip; returns how many were written. Raises
        StoreUnavailable when Redis cannot answer at all."""
        commands = [
            (
                "XADD",
                stream,
                "MAXLEN",
                "~",
                self._max_entries,
                "*",
                *(item for pair in fields.items() for item in pair),
            )
            for stream, fields in entries
        ]
        async with translate_errors():
            answers = await send_together(self._redis, commands)
        return sum(1 for answer in answers if not isinstance(answer, Exception))

    async def record(self, action: AuditAction | str, **values: Any) -> bool:
        """:meth:`append` for an operation that has already happened: never raises.

        When the write fails (Redis went away between the operation and its entry), the
        operation is still answered as the success it was: refusing would make the caller
        retry, and a retried issuance mints a second credential while the first one exists
        anyway. The error log line carries the entry's identifying fields (none personal),
        so the log pipeline keeps the trail. Returns whether the entry was written.
        """
        try:
            await self.append(action, **values)
        except (StoreUnavailable, ValueError) as exc:
            safe = {
                k: v
                for k, v in values.items()
                if k in LOGGED_FIELDS and isinstance(v, str) and FIELD_PATTERNS[k].fullmatch(v)
            }
            log.error(
                "audit write failed: %s",
                type(exc).__name__,
                extra={"audit_action": str(action), **safe},
            )
            return False
        return True

    def _stream_of(self, action: AuditAction | str) -> str:
        if action == AuditAction.CREDENTIAL_VERIFIED:
            return self._verifications
        return self._key

    def _read_stream(self, verifications: bool) -> str:
        return self._verifications if verifications else self._key

    async def tail(self, count: int, *, verifications: bool = False) -> list[AuditEntry]:
        """The newest ``count`` entries, oldest first: of the events stream, or with
        ``verifications`` of the verifications stream."""
        async with translate_errors():
            rows = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await self._redis.xrevrange(self._read_stream(verifications), count=count),
            )
        return [AuditEntry.from_stream(entry_id, fields) for entry_id, fields in reversed(rows)]

    async def after(
        self, last_id: str, *, block_ms: int, count: int = 100, verifications: bool = False
    ) -> list[AuditEntry]:
        """Entries newer than ``last_id`` (``"$"``: from now on), waiting up to ``block_ms``."""
        stream = self._read_stream(verifications)
        async with translate_errors():
            answer = cast(
                "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
                await self._redis.xread({stream: last_id}, count=count, block=block_ms),
            )
        return [
            AuditEntry.from_stream(entry_id, fields)
            for _stream, rows in answer or []
            for entry_id, fields in rows
        ]
