"""Status of other issuers' credentials: fetch their Status List Token, verify, cache.

What may be fetched is decided by the trust list, never by the token: the status URI must be
``https`` (``http`` only when ``allow_http``, for tests), its host one of the issuer's
``status_hosts``, and every address that host resolves to public, unless the trust list lets
the issuer's hosts be private (``allow_private_addresses``). The connection goes to the very
address that was checked, asking for the host by name (``Host`` and TLS SNI): a DNS answer
that changes between the check and the connection (rebinding) changes nothing. Redirects are
not followed.

One deadline bounds the whole lookup (resolution, connection, every byte), so a server that
drips a byte at a time cannot hold a verification past it. The body is size-limited, the
list it inflates to too. The token must be signed by that issuer's keys with ``sub`` equal to
the URI; without ``exp`` it must be recent (``max_age_seconds``); and it must not be older
than a list already seen at that URI (:class:`~service.store.remote_lists.StaleList`).

A URI that may not or cannot be fetched, or an index outside the list, is an invalid status
reference; a list that cannot be fetched in time, is too large, too old or does not verify is
"status unavailable". Never a guess.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from service.core.credential import StatusReference
from service.core.reasons import Failure, Reason
from service.core.status_list import StatusListError, StatusValue, get_status
from service.core.status_token import STATUS_LIST_TYP, StatusListToken, read_status_list
from service.core.verify import TrustedIssuer
from service.store.remote_lists import CacheMiss, IndexOutOfRange, RemoteListCache, StaleList

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
        timeout: float = 3.0,
        max_inflated_bytes: int = 2 * 1024 * 1024,
        max_age_seconds: int = 86_400,
        cache_budget_bytes: int = 8 * 1024 * 1024,
        allow_http: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._http = http
        self._max_bytes = max_bytes
        self._max_cache_seconds = max_cache_seconds
        self._clock_skew = clock_skew
        self._timeout = timeout
        self._max_inflated_bytes = max_inflated_bytes
        self._max_age = max_age_seconds
        self._budget = cache_budget_bytes
        self._schemes = frozenset({"https", "http"} if allow_http else {"https"})
        self._clock = clock
        self._inflight: dict[str, asyncio.Lock] = {}

    def allowed(self, issuer: TrustedIssuer, uri: str) -> bool:
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:  # e.g. "https://[::1": a bracket that never closes
            return False
        return (
            parts.scheme in self._schemes
            and not parts.username
            and not parts.password
            and parts.hostname is not None
            and parts.netloc.lower() in issuer.status_hosts
        )

    @staticmethod
    def public_address(address: str) -> bool:
        """Whether ``address`` is a public unicast address: not private, loopback,
        link-local, shared (CGNAT), multicast, reserved or unspecified."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_global and not ip.is_multicast

    async def _checked_address(self, issuer: TrustedIssuer, host: str, port: int) -> str:
        """The address to connect to, once every address ``host`` has is allowed."""
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise _unavailable("status host does not resolve") from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise _unavailable("status host does not resolve")
        if not issuer.private_status_hosts and not all(map(self.public_address, addresses)):
            # Any non-public answer refuses the host: a resolver that mixes a public and a
            # private address must not get a chance to have the private one used.
            raise _unavailable("status host resolves to a private address")
        return addresses[0]

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
        parts = urlsplit(uri)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            # One deadline for everything, not a timeout per read: a byte every second
            # would otherwise hold the verification for as long as the server likes.
            async with asyncio.timeout(self._timeout):
                address = await self._checked_address(issuer, host, port)
                literal = f"[{address}]" if ":" in address else address
                target = urlunsplit(
                    parts._replace(netloc=literal + (f":{parts.port}" if parts.port else ""))
                )
                async with self._http.stream(
                    "GET",
                    target,
                    headers={"Accept": f"application/{STATUS_LIST_TYP}", "Host": parts.netloc},
                    extensions={"sni_hostname": host},
                    follow_redirects=False,
                ) as response:
                    if response.status_code != 200:
                        raise _unavailable(f"status list answered HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise _unavailable("status list too large")
        except TimeoutError:
            raise _unavailable("status list not fetched within its deadline") from None
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
                max_bytes=self._max_inflated_bytes,
                max_age=self._max_age,
            )
        except UnicodeDecodeError as exc:
            raise _unavailable("status list token is not valid") from exc
        except StatusListError as exc:
            # Fixed sentences (too large, too old, expired, bad signature...): no input.
            raise _unavailable(f"status list token is not valid: {exc}") from exc
        seconds = token.fresh_for(now, max_seconds=self._max_cache_seconds)
        try:
            await self._cache.put(
                uri,
                bits=token.bits,
                data=token.data,
                seconds=seconds,
                issued_at=token.iat,
                now=now,
                budget=self._budget,
                issuer=issuer.identifier,
            )
        except StaleList:
            raise _unavailable("status list older than one already seen") from None
        return token
