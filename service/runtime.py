"""Everything a running Thiqa needs, built once from settings and a Redis connection.

The API's lifespan and the CLI both build a :class:`Runtime`; routers and commands take what
they need from it. Nothing here connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis

from .core.verify import TrustedIssuer
from .errors import StoreUnavailable
from .issuing import Issuer
from .keyring import KeyRing, load_or_create
from .remote_status import RemoteStatus
from .settings import Settings
from .store.clients import ClientStore
from .store.connection import KeySpace, translate_errors
from .store.remote_lists import RemoteListCache
from .store.status import StatusStore
from .trust import load_trust_list
from .verifying import Verifier

__all__ = ["Runtime", "build_runtime", "load_keyring"]


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    redis: aioredis.Redis
    keyring: KeyRing
    clients: ClientStore
    status: StatusStore
    issuer: Issuer
    verifier: Verifier
    http: httpx.AsyncClient

    async def ready(self) -> bool:
        try:
            async with translate_errors():
                return bool(await self.redis.ping())
        except StoreUnavailable:
            return False

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()


def load_keyring(settings: Settings) -> KeyRing:
    passphrase = settings.key_passphrase.get_secret_value().encode() if (
        settings.key_passphrase
    ) else None
    return load_or_create(settings.keys_dir, alg=settings.signing_alg, passphrase=passphrase)


def build_runtime(settings: Settings, redis: aioredis.Redis, keyring: KeyRing) -> Runtime:
    """Wire the parts together. Reads the trust list; raises TrustListError if it is bad."""
    keys = KeySpace(settings.redis_prefix)
    status = StatusStore(redis, keys, list_size=settings.status_list_size)
    issuer = Issuer(settings=settings, keyring=keyring, status=status)
    trusted = load_trust_list(settings.trusted_issuers) if settings.trusted_issuers else {}
    trusted[settings.issuer_url] = TrustedIssuer(
        identifier=settings.issuer_url,
        keys=keyring.verification_keys(),
        types=issuer.credential_types,
    )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.remote_status_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "Thiqa"},
    )
    remote = RemoteStatus(
        cache=RemoteListCache(redis, keys),
        http=http,
        max_bytes=settings.remote_status_max_bytes,
        max_cache_seconds=settings.remote_status_max_cache_seconds,
        clock_skew=settings.clock_skew_seconds,
    )
    verifier = Verifier(settings=settings, trusted=trusted, status=status, remote=remote)
    return Runtime(
        settings=settings,
        redis=redis,
        keyring=keyring,
        clients=ClientStore(redis, keys),
        status=status,
        issuer=issuer,
        verifier=verifier,
        http=http,
    )
