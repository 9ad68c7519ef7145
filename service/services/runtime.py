"""Everything a running Thiqa needs, built once from settings and a Redis connection.

The API's lifespan and the CLI both build a :class:`Runtime`; routers and commands take what
they need from it. Nothing here connects at import time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis

from service.core.x509 import authority_key_identifier
from service.errors import StoreUnavailable
from service.keyring.certificates import AccessCredential, CertificateError, Pki, access_host
from service.keyring.keyring import INDEX, KeyRing, KeyRingError, load_or_create, locked, read_ring
from service.keyring.live import KeyRingHolder, LiveTrust
from service.keyring.offer_claims import OfferClaimsSealer
from service.keyring.trust_list import load_trust_list
from service.services.issuing import Issuer
from service.services.openid4vci_issuer import WalletIssuance
from service.services.openid4vp_verifier import Presenter
from service.services.remote_status import RemoteStatus
from service.services.status_publishing import StatusPublisher
from service.services.verifying import Verifier
from service.settings import Settings
from service.store.audit import AuditLog
from service.store.clients import ClientStore
from service.store.connection import KeySpace, parse_redis_url, translate_errors
from service.store.events import EventHub
from service.store.inspection import check_store, inspect_store
from service.store.offers import NonceStore, OfferStore
from service.store.presentations import PresentationStore
from service.store.remote_lists import RemoteListCache
from service.store.replication import Replication
from service.store.status import StatusStore

__all__ = [
    "Runtime",
    "build_runtime",
    "key_passphrase",
    "load_access",
    "load_keyring",
    "open_keyring",
    "open_pki",
    "read_keyring",
]

log = logging.getLogger("thiqa.runtime")


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    redis: aioredis.Redis
    #: Follows keys/ while the server runs (``thiqa keys rotate`` / ``revoke``).
    keys: KeyRingHolder
    clients: ClientStore
    status: StatusStore
    issuer: Issuer
    verifier: Verifier
    http: httpx.AsyncClient
    #: The audit trail: issuances, status changes and verifications (service.store.audit).
    audit: AuditLog
    #: Issuance to wallets over OpenID4VCI (service.services.openid4vci_issuer).
    wallet_issuance: WalletIssuance
    #: Presentation requests to wallets over OpenID4VP (service.services.openid4vp_verifier).
    presentations: Presenter
    #: The process's one pub/sub subscriber, shared by every long-poll and event stream.
    events: EventHub
    #: How many replicas an issuance or status change waits for (set by :meth:`start`).
    replication: Replication
    #: This issuer's status lists as signed tokens (service.services.status_publishing).
    publisher: StatusPublisher

    @property
    def keyring(self) -> KeyRing:
        """The key ring as it stands now: read it per request, never keep it."""
        return self.keys.current()

    async def start(self) -> None:
        """Check the Redis before serving (service.store.inspection): raises
        StoreMisconfigured on one that may evict keys, and sets the replicas to wait for."""
        assert self.settings.redis_url is not None
        topology = parse_redis_url(self.settings.redis_url.get_secret_value())
        wanted = self.settings.redis_min_replicas
        try:
            facts = await inspect_store(self.redis)
        except StoreUnavailable:
            # Serve anyway (every request that needs Redis answers 503 until it is back), and
            # wait for replicas wherever the topology exists to have them: fail closed.
            log.warning("Redis cannot answer at start: its configuration was not checked")
            self.replication.replicas = (
                wanted if wanted is not None else int(topology.may_have_replicas)
            )
            return
        self.replication.replicas = check_store(facts, topology, wanted)

    async def ready(self) -> bool:
        try:
            async with translate_errors():
                return bool(await self.redis.ping())
        except StoreUnavailable:
            return False

    async def aclose(self) -> None:
        await self.events.aclose()
        await self.http.aclose()
        await self.redis.aclose()


def key_passphrase(settings: Settings) -> bytes | None:
    if settings.key_passphrase:
        return settings.key_passphrase.get_secret_value().encode()
    return None


def open_pki(settings: Settings) -> Pki:
    return Pki(settings.keys_dir, passphrase=key_passphrase(settings))


def load_keyring(settings: Settings) -> KeyRing:
    """The ring with each key's certificate chain, validated (a bad one raises)."""
    return load_or_create(
        settings.keys_dir,
        alg=settings.signing_alg,
        passphrase=key_passphrase(settings),
        chains=open_pki(settings).chain_loader(issuer_url=settings.issuer_url, clock=time.time),
    )


def read_keyring(settings: Settings, *, now: int | None = None) -> KeyRing:
    """The ring as it stands, for commands that only look: never creates a key or a folder
    (a read must not change the issuer's identity), never writes a due activation down."""
    if not (settings.keys_dir / INDEX).is_file():
        raise KeyRingError(
            f"no issuer keys in {settings.keys_dir.resolve()}: `thiqa serve` creates the first "
            "one on its first start (set THIQA_KEYS_DIR to the server's keys folder)"
        )
    stored = read_ring(
        settings.keys_dir,
        key_passphrase(settings),
        chains=open_pki(settings).chain_loader(issuer_url=settings.issuer_url, clock=time.time),
    )
    return stored.at(int(time.time()) if now is None else now)


def load_access(settings: Settings) -> AccessCredential | None:
    """The relying party's request-signing key and certificate, validated (a bad one raises
    KeyRingError and stops the start); None when none is configured."""
    pki = open_pki(settings)
    if not pki.has_access:
        return None
    try:
        return pki.load_access(host=access_host(settings.issuer_url), now=int(time.time()))
    except CertificateError as exc:
        raise KeyRingError(str(exc)) from exc


def own_authority(settings: Settings) -> str | None:
    """DCQL ``aki`` of this issuer's own root, when it has one."""
    pki = open_pki(settings)
    return authority_key_identifier(pki.root()) if pki.exists else None


def open_keyring(settings: Settings) -> KeyRingHolder:
    """The ring a server uses: created on first start, then followed as it changes. With
    THIQA_PKI_AUTO, what is missing of the development PKI is made first; every key's
    certificate chain is validated on load, and a bad one stops the start."""
    pki = open_pki(settings)
    if settings.pki_auto:
        ring = load_or_create(
            settings.keys_dir, alg=settings.signing_alg, passphrase=key_passphrase(settings)
        )
        try:
            # Under the key ring's writers' lock: workers starting together on an empty
            # folder must not each make a root of their own.
            with locked(settings.keys_dir):
                pki.provision(ring, issuer_url=settings.issuer_url, now=int(time.time()))
        except CertificateError as exc:
            raise KeyRingError(str(exc)) from exc
    return KeyRingHolder(
        settings.keys_dir,
        alg=settings.signing_alg,
        passphrase=key_passphrase(settings),
        chains=pki.chain_loader(issuer_url=settings.issuer_url, clock=time.time),
    )


def build_runtime(settings: Settings, redis: aioredis.Redis, keyring: KeyRingHolder) -> Runtime:
    """Wire the parts together. Reads the trust list; raises TrustListError if it is bad."""
    keys = KeySpace(settings.redis_prefix)
    replication = Replication(redis, timeout_ms=settings.redis_replica_timeout_ms)
    status = StatusStore(
        redis,
        keys,
        list_size=settings.status_list_size,
        retention_seconds=settings.record_retention_days * 86_400,
        replication=replication,
    )
    issuer = Issuer(settings=settings, keys=keyring.current, status=status)
    others = load_trust_list(settings.trusted_issuers) if settings.trusted_issuers else {}
    # This issuer's own keys come from the live ring, not a copy made at start.
    # This issuer's credentials are verified by kid against the live ring (a revoked key
    # is named by its kid); their x5c is for other verifiers.
    trusted = LiveTrust(
        others, own=settings.issuer_url, types=issuer.credential_types, keys=keyring
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
        timeout=settings.remote_status_timeout_seconds,
        max_inflated_bytes=settings.remote_status_max_inflated_bytes,
        max_age_seconds=settings.remote_status_max_age_seconds,
        cache_budget_bytes=settings.remote_status_cache_budget_bytes,
        allow_http=settings.remote_status_allow_http,
    )
    verifier = Verifier(
        settings=settings,
        trusted=trusted,
        status=status,
        redis=redis,
        remote=remote,
        refresh_keys=keyring.refresh_for_unknown_kid,
    )
    events = EventHub(redis, keys.presentation_events_pattern())
    return Runtime(
        settings=settings,
        events=events,
        replication=replication,
        redis=redis,
        keys=keyring,
        clients=ClientStore(redis, keys),
        status=status,
        issuer=issuer,
        verifier=verifier,
        http=http,
        audit=AuditLog(redis, keys, max_entries=settings.audit_max_entries),
        wallet_issuance=WalletIssuance(
            settings=settings,
            issuer=issuer,
            offers=OfferStore(redis, keys),
            nonces=NonceStore(redis, keys),
            signing_algs=lambda: [keyring.current().active_alg],
            sealer=OfferClaimsSealer(settings.keys_dir),
        ),
        presentations=Presenter(
            settings=settings,
            store=PresentationStore(redis, keys, events),
            verifier=verifier,
            access=load_access(settings),
            own_authority=own_authority(settings),
        ),
        publisher=StatusPublisher(
            settings=settings, status=status, signing_key=lambda: keyring.current().active
        ),
    )
