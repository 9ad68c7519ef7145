"""Publishing this issuer's status lists: signed once per change, served from memory.

Building a token for a list of a million entries (read 256 KiB, zlib level 9, sign) takes
tens of milliseconds; relying parties everywhere fetch these lists, so the token is built at
most once per change of the list, on a worker thread, and every fetch in between is served
from memory. Nothing heavy runs on the event loop.

When a change is in the published token: every fetch first reads the list's version from
Redis (one small round trip; the status change bumps it in the same script that changes the
entry). A token of an older version is never served: the fetch waits for a new build, so a
change acknowledged to its caller is in the token of the very next fetch. A rebuild also
happens when the token has been held for half of ``THIQA_STATUS_LIST_TTL_SECONDS`` or half of
its lifetime, whichever is shorter, and when the active signing key changes.

What the token claims: ``iat`` is when it was built (from bytes read at that moment), ``exp``
is ``iat`` + ``THIQA_STATUS_LIST_LIFETIME_SECONDS``, ``ttl`` is the setting. Because a token
is re-signed before half its ``ttl`` has passed, no answer carries a token older than that,
and ``Cache-Control: max-age`` never runs past the token's ``exp``.

Encodings: each :class:`Encoding` turns one snapshot's claims into one media type's bytes.
The JWT form and its JSON claims are here; another form (the CWT of mdoc) is one more
encoding in the tuple, and extra header fields (``x5c``) are the encoding's to add.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.core.encoding import json_dumps
from service.core.keys import SigningKey
from service.core.status_token import sign_status_list, status_list_claims
from service.settings import Settings
from service.store.status import ListSnapshot, StatusStore

__all__ = [
    "JSON_CLAIMS",
    "STATUS_LIST_JWT",
    "Encoding",
    "PublishedList",
    "StatusPublisher",
]


class Encoding(Protocol):
    """One published form of a status list."""

    @property
    def media_type(self) -> str: ...

    def encode(self, claims: Mapping[str, Any], key: SigningKey) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _JwtEncoding:
    """``application/statuslist+jwt`` (draft-ietf-oauth-status-list §5.1)."""

    media_type: str = "application/statuslist+jwt"

    def encode(self, claims: Mapping[str, Any], key: SigningKey) -> bytes:
        return sign_status_list(claims, key).encode("ascii")


@dataclass(frozen=True, slots=True)
class _JsonClaims:
    """The token's claims as JSON, for people and tools reading a list by hand."""

    media_type: str = "application/json"

    def encode(self, claims: Mapping[str, Any], key: SigningKey) -> bytes:
        return json_dumps(claims).encode("utf-8")


STATUS_LIST_JWT = _JwtEncoding()
JSON_CLAIMS = _JsonClaims()


@dataclass(frozen=True, slots=True)
class PublishedList:
    """Every form of one list at one version, signed by one key."""

    list_id: str
    version: int
    kid: str
    iat: int
    exp: int
    ttl: int
    #: media type -> (body, ETag)
    forms: Mapping[str, tuple[bytes, str]]

    def max_age(self, now: float) -> int:
        """How long a cache may keep this answer: never past ``ttl`` nor the token's ``exp``."""
        return max(0, min(self.ttl, self.exp - int(now)))


def _build(
    snapshot: ListSnapshot,
    *,
    key: SigningKey,
    encodings: Sequence[Encoding],
    uri: str,
    issuer: str,
    now: int,
    ttl: int,
    lifetime: int,
) -> PublishedList:
    claims = status_list_claims(
        snapshot.data, uri=uri, issuer=issuer, now=now, ttl=ttl, lifetime=lifetime
    )
    forms: dict[str, tuple[bytes, str]] = {}
    for encoding in encodings:
        body = encoding.encode(claims, key)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        forms[encoding.media_type] = (body, etag)
    return PublishedList(
        list_id=snapshot.list_id,
        version=snapshot.version,
        kid=key.kid,
        iat=claims["iat"],
        exp=claims["exp"],
        ttl=ttl,
        forms=forms,
    )


class StatusPublisher:
    def __init__(
        self,
        *,
        settings: Settings,
        status: StatusStore,
        signing_key: Callable[[], SigningKey],
        encodings: Sequence[Encoding] = (STATUS_LIST_JWT, JSON_CLAIMS),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._status = status
        self._signing_key = signing_key
        self._encodings = tuple(encodings)
        self._settings = settings
        self._clock = clock
        self._ttl = settings.status_list_ttl_seconds
        self._lifetime = settings.status_list_lifetime_seconds
        # Re-signed well before a consumer could find it stale or expired.
        self._resign_after = max(1, min(self._ttl, self._lifetime) // 2)
        self._published: dict[str, PublishedList] = {}
        self._building: dict[str, asyncio.Task[PublishedList | None]] = {}

    @property
    def media_types(self) -> tuple[str, ...]:
        return tuple(e.media_type for e in self._encodings)

    async def published(self, list_id: str) -> PublishedList | None:
        """The list as published now, or None if no such list exists (or its entries are
        gone: nothing is published that could read as "valid"). Raises StoreUnavailable."""
        version = await self._status.list_version(list_id)
        if version is None:
            self._published.pop(list_id, None)
            return None
        while True:
            held = self._published.get(list_id)
            if held is not None and self._current(held, version):
                return held
            built = await self._build_once(list_id)
            if built is None:
                return None
            if built.version >= version:
                return built
            # A build that read the list before this fetch's version: build again.

    def _current(self, held: PublishedList, version: int) -> bool:
        return (
            held.version >= version
            and self._clock() < held.iat + self._resign_after
            and held.kid == self._signing_key().kid
        )

    async def _build_once(self, list_id: str) -> PublishedList | None:
        """One build per list at a time; fetches arriving meanwhile wait for it."""
        task = self._building.get(list_id)
        if task is None:
            task = asyncio.ensure_future(self._build(list_id))
            self._building[list_id] = task
            task.add_done_callback(lambda _: self._building.pop(list_id, None))
        # shield: a fetch that goes away must not cancel the build others wait for.
        return await asyncio.shield(task)

    async def _build(self, list_id: str) -> PublishedList | None:
        snapshot = await self._status.snapshot(list_id)
        if snapshot is None:
            self._published.pop(list_id, None)
            return None
        settings = self._settings
        built = await asyncio.to_thread(
            _build,
            snapshot,
            key=self._signing_key(),
            encodings=self._encodings,
            uri=settings.status_list_uri(list_id),
            issuer=settings.issuer_url,
            now=int(self._clock()),
            ttl=self._ttl,
            lifetime=self._lifetime,
        )
        held = self._published.get(list_id)
        if held is None or held.version <= built.version:
            self._published[list_id] = built
        return built
