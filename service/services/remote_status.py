"""Status of other issuers' credentials: fetch their Status List Token, verify, cache.

What may be fetched is decided by the trust list, never by the token: the status URI's host
must be one of the issuer's ``status_hosts``, redirects are not followed, the response is
size-limited and time-limited, and the token must be signed by that issuer's keys with
``sub`` equal to the URI. A URI that may not or cannot be fetched, or an index outside the
list, is an invalid status reference; a list that cannot be fetched or does not verify is
"status unavailable". Never a guess.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from service.core.credential import StatusReference
from service.core.reasons import Failure, Reason
from service.core.status_list import StatusListError, StatusValue, get_status
from service.core.status_token import STATUS_LIST_TYP, StatusListToken, read_status_list
from service.core.verify import TrustedIssuer
from service.store.remote_lists import CacheMiss, IndexOutOfRange, RemoteListCache

__all__ = ["RemoteStatus", "StatusLookupFailed"]


class StatusLookupFailed(Exception):
    """Carries the verdict failure to report instead of a status."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        super().__init__(failure.message)


def _unavailable(detail: str) -> StatusLookupFailed:
    return StatusLookupFailed(Failure.of(Reason.STATUS_UNAVAILABLE, detail))


class RemoteStatus:
    def __init__(
        self,
        *,
        cache: RemoteListCache,
        http: httpx.AsyncClient,
        max_bytes: int,
        max_cache_seconds: int,
        clock_skew: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._http = http
        self._max_bytes = max_bytes
        self._max_cache_seconds = max_cache_seconds
        self._clock_skew = clock_skew
        self._clock = clock
        self._inflight: dict[str, asyncio.Lock] = {}

    @staticmethod
    def allowed(issuer: TrustedIssuer, uri: str) -> bool:
        try:
            parts = urlsplit(uri)
        except ValueError:  # e.g. "https://[::1": a bracket that never closes
            return False
        return (
            parts.scheme in ("https", "http")
            and not parts.username
            and not parts.password
            and parts.netloc.lower() in issuer.status_hosts
        )

    async def status_of(self, issuer: TrustedIssuer, ref: StatusReference) -> StatusValue:
        """Raises StatusLookupFailed, or StoreUnavailable when Redis cannot answer."""
        if not self.allowed(issuer, ref.uri):
            raise StatusLookupFailed(
                Failure.of(Reason.INVALID_STATUS_REFERENCE, "status host not trusted")
            )
        cached = await self._cached(issuer, ref)
        if cached is not None:
            return cached
        # One fetch per list at a time in this process; the others wait and read its result.
        lock = self._inflight.setdefault(ref.uri, asyncio.Lock())
        try:
            async with lock:
                cached = await self._cached(issuer, ref)
                if cached is not None:
                    return cached
                token = await self._fetch(issuer, ref.uri)
        finally:
            if not lock.locked():
                self._inflight.pop(ref.uri, None)  # keep the table as small as the traffic
        try:
            value = get_status(token.data, ref.idx, token.bits)
        except StatusListError:
            raise StatusLookupFailed(
                Failure.of(Reason.INVALID_STATUS_REFERENCE, "index out of range")
            ) from None
        return self._value(value)

    async def _cached(self, issuer: TrustedIssuer, ref: StatusReference) -> StatusValue | None:
        try:
            return self._value(
                await self._cache.status_of(ref.uri, ref.idx, issuer=issuer.identifier)
            )
        except CacheMiss:
            return None
        except IndexOutOfRange:
            raise StatusLookupFailed(
                Failure.of(Reason.INVALID_STATUS_REFERENCE, "index out of range")
            ) from None

    @staticmethod
    def _value(value: int) -> StatusValue:
        return StatusValue(value) if value in (0, 1, 2) else StatusValue.APPLICATION_SPECIFIC

    async def _fetch(self, issuer: TrustedIssuer, uri: str) -> StatusListToken:
        try:
            async with self._http.stream(
                "GET",
                uri,
                headers={"Accept": f"application/{STATUS_LIST_TYP}"},
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise _unavailable(f"status list answered HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise _unavailable("status list too large")
        except httpx.InvalidURL:
            # Not an HTTPError: a control character in the path, say. The URI is wrong, not
            # the network.
            raise StatusLookupFailed(
                Failure.of(Reason.INVALID_STATUS_REFERENCE, "status uri is not a valid URL")
            ) from None
        except httpx.HTTPError as exc:
            raise _unavailable("status list could not be fetched") from exc
        now = int(self._clock())
        try:
            token = read_status_list(
                body.decode("ascii").strip(),
                keys=issuer.keys,
                anchors=issuer.all_anchors(),
                uri=uri,
                now=now,
                clock_skew=self._clock_skew,
            )
        except (StatusListError, UnicodeDecodeError) as exc:
            raise _unavailable("status list token is not valid") from exc
        seconds = token.fresh_for(now, max_seconds=self._max_cache_seconds)
        await self._cache.put(
            uri, bits=token.bits, data=token.data, seconds=seconds, issuer=issuer.identifier
        )
        return token
