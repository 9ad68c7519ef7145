"""Everything a running Thiqa needs, built once from settings and a Redis connection.

The API's lifespan and the CLI both build a :class:`Runtime`; routers and commands take what
they need from it. Nothing here connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from .core.verify import TrustedIssuer
from .issuing import Issuer
from .keyring import KeyRing, load_or_create
from .settings import Settings
from .store.clients import ClientStore
from .store.connection import KeySpace, translate_errors
from .store.status import StatusStore
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

    async def ready(self) -> bool:
        try:
            async with translate_errors():
                return bool(await self.redis.ping())
        except Exception:
            return False


def load_keyring(settings: Settings) -> KeyRing:
    passphrase = settings.key_passphrase.get_secret_value().encode() if (
        settings.key_passphrase
    ) else None
    return load_or_create(settings.keys_dir, alg=settings.signing_alg, passphrase=passphrase)


def build_runtime(settings: Settings, redis: aioredis.Redis, keyring: KeyRing) -> Runtime:
    keys = KeySpace(settings.redis_prefix)
    status = StatusStore(redis, keys, list_size=settings.status_list_size)
    issuer = Issuer(settings=settings, keyring=keyring, status=status)
    own = TrustedIssuer(
        identifier=settings.issuer_url,
        keys=keyring.verification_keys(),
        types=issuer.credential_types,
    )
    verifier = Verifier(settings=settings, trusted={own.identifier: own}, status=status)
    return Runtime(
        settings=settings,
        redis=redis,
        keyring=keyring,
        clients=ClientStore(redis, keys),
        status=status,
        issuer=issuer,
        verifier=verifier,
    )
