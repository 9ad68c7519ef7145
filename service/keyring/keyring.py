"""The issuer's keys on disk, under the operator's control.

``keys/`` holds one PKCS#8 PEM file per key, named by its ``kid`` (RFC 7638 thumbprint), and
``keyring.json``, the source of truth for what each key may do::

    {"active": "<kid>", "keys": [{"kid", "alg", "file", "status", "created_at",
                                  "activate_after", "retired_at"?, "revoked_at"?}], ...}

A key's ``status`` is one of:

- ``pending``: published (in the JWKS, trusted by the verifier) but not signing yet; it
  becomes the active key once ``activate_after`` has passed, so verifiers that cache the JWKS
  know a key before they meet a credential signed by it.
- ``active``: the one key that signs credentials and status-list tokens.
- ``retired``: signs nothing any more, still published, so what it signed keeps verifying.
- ``revoked``: compromised. Not published; everything it signed fails with ``key_revoked``.

A pending key whose time has come is active for everyone who reads the ring, whether or not
the file was rewritten yet (:meth:`StoredRing.at`): the switch needs no process to write at
the right moment, and every server process makes it at the same instant. A PEM file the index
does not name is ignored: a rotation writes the key first and the index last, so a crash in
between leaves a key that was never published and must never sign.

Private key files are created with mode 0600 in one step (no window where they are
world-readable) and are encrypted when a passphrase is configured. Writers (the ``thiqa keys``
commands, a first start) hold ``.keyring.lock``; readers need no lock, because the index is
replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from service.core.keys import (
    SigningKey,
    VerificationKey,
    algorithm_for,
    generate_signing_key,
    jwk_thumbprint,
    public_jwk,
)
from service.errors import KeyRingUnavailable

try:  # POSIX; elsewhere writers are not serialised (one operator at a time, then).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    # The module's name bound to None marks the platform without it; mypy types a module
    # name as that module only.
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "INDEX",
    "ChainLoader",
    "KeyEntry",
    "KeyRing",
    "KeyRingError",
    "KeyStatus",
    "StoredRing",
    "load_or_create",
    "locked",
    "read_ring",
    "write_index",
    "write_private",
]

INDEX: Final = "keyring.json"
_LOCK: Final = ".keyring.lock"
#: An RFC 7638 SHA-256 thumbprint: 43 base64url characters. Anything else in the index is an
#: edit gone wrong (and must never become a path).
_KID: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ALGS: Final = frozenset({"ES256", "ES384", "EdDSA"})


#: The ``x5c`` of a key (leaf first, no root), validated; empty when the key has no
#: certificate. Raises :class:`KeyRingError` for a certificate that cannot be used.
ChainLoader = Callable[[SigningKey], tuple[str, ...]]


class KeyRingError(RuntimeError):
    """The keys folder cannot be read as a key ring (wrong passphrase, edited files...)."""


class KeyStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key as the index describes it. Times are Unix seconds; None when unknown (a ring
    written before keys had statuses)."""

    kid: str
    alg: str
    status: KeyStatus
    created_at: int | None = None
    #: pending: when it may start signing; active or retired: when it did.
    activate_after: int | None = None
    retired_at: int | None = None
    revoked_at: int | None = None

    @property
    def published(self) -> bool:
        return self.status is not KeyStatus.REVOKED


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The ring as it stands at one instant: who signs, what is published, what is revoked.

    ``revoked`` comes from the index alone, so a revocation holds even when a key file cannot
    be read. ``signer`` is None when the index names a signing key whose file this process
    cannot load: then nothing is signed (:attr:`active` raises) rather than signed by a key
    the index no longer lets sign."""

    signer: SigningKey | None
    #: Every published key this process could load (pending, active, retired): the JWKS, and
    #: what the verifier trusts.
    keys: Mapping[str, SigningKey]
    #: Every key in the index, revoked ones too, with its status at that instant.
    entries: tuple[KeyEntry, ...] = ()
    revoked: frozenset[str] = frozenset()
    #: When a pending key becomes active, if one is waiting.
    next_change: int | None = None
    #: Published keys named by the index whose file could not be loaded, with the reason.
    unloadable: Mapping[str, str] = field(default_factory=dict)

    @property
    def active(self) -> SigningKey:
        """The key that signs; raises :class:`KeyRingUnavailable` (503) when it cannot be
        loaded, so nothing is ever signed by a key other than the one the index names."""
        if self.signer is None:
            raise KeyRingUnavailable()
        return self.signer

    @property
    def active_kid(self) -> str:
        """The signing key's kid as the index says, whether or not its file loaded."""
        (kid,) = (e.kid for e in self.entries if e.status is KeyStatus.ACTIVE)
        return kid

    @property
    def active_alg(self) -> str:
        (alg,) = (e.alg for e in self.entries if e.status is KeyStatus.ACTIVE)
        return alg

    def verification_keys(self) -> dict[str, VerificationKey]:
        return {kid: key.verification_key() for kid, key in self.keys.items()}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.verification_key().public_jwk() for key in self.keys.values()]}


@dataclass(frozen=True, slots=True)
class StoredRing:
    """Exactly what ``keyring.json`` says, with the private keys of every published entry."""

    entries: tuple[KeyEntry, ...]
    private: Mapping[str, SigningKey]
    #: Published entries whose private key could not be loaded (only when read leniently).
    unloadable: Mapping[str, str] = field(default_factory=dict)

    def effective(self, now: int) -> tuple[KeyEntry, ...]:
        """The entries with every pending key whose time has come made active (the newest
        such key) or retired (any older one), and the key it replaces retired."""
        due = [
            e
            for e in self.entries
            if e.status is KeyStatus.PENDING
            and e.activate_after is not None
            and e.activate_after <= now
        ]
        if not due:
            return self.entries
        newest = max(due, key=lambda e: (e.activate_after or 0, e.kid))
        switched = newest.activate_after
        entries = []
        for entry in self.entries:
            if entry is newest:
                entry = replace(entry, status=KeyStatus.ACTIVE)
            elif entry.status is KeyStatus.ACTIVE or entry in due:
                entry = replace(entry, status=KeyStatus.RETIRED, retired_at=switched)
            entries.append(entry)
        return tuple(entries)

    def at(self, now: int) -> KeyRing:
        entries = self.effective(now)
        (active,) = (e for e in entries if e.status is KeyStatus.ACTIVE)
        waiting = [
            e.activate_after
            for e in entries
            if e.status is KeyStatus.PENDING and e.activate_after is not None
        ]
        return KeyRing(
            signer=self.private.get(active.kid),
            keys={e.kid: self.private[e.kid] for e in entries if e.kid in self.private},
            entries=entries,
            revoked=frozenset(e.kid for e in entries if not e.published),
            next_change=min(waiting) if waiting else None,
            unloadable=dict(self.unloadable),
        )


# --- files ------------------------------------------------------------------------------------


def _encryption(passphrase: bytes | None) -> serialization.KeySerializationEncryption:
    if passphrase:
        return serialization.BestAvailableEncryption(passphrase)
    return serialization.NoEncryption()


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory entry is: a power cut must not bring back
    # an index that still names a revoked key as active.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_private(keys_dir: Path, key: SigningKey, passphrase: bytes | None) -> None:
    pem = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        _encryption(passphrase),
    )
    fd = os.open(keys_dir / f"{key.kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def _read_private(path: Path, passphrase: bytes | None) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except FileNotFoundError as exc:
        raise KeyRingError(f"{path.name}: named in the index, but the file is missing") from exc
    except (ValueError, TypeError, OSError) as exc:
        raise KeyRingError(f"cannot load {path.name}: wrong passphrase or not a key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyRingError(f"{path.name}: unsupported key type")
    kid = jwk_thumbprint(public_jwk(key))
    if path.stem != kid:
        raise KeyRingError(f"{path.name}: file name does not match the key's thumbprint")
    return SigningKey(kid=kid, alg=algorithm_for(key), key=key)


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _seconds(value: Any, name: str, kid: str) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise KeyRingError(f"{INDEX}: key {kid}: {name} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise KeyRingError(f"{INDEX}: key {kid}: {name} has no time zone")
    return int(moment.timestamp())


def write_index(keys_dir: Path, entries: tuple[KeyEntry, ...] | list[KeyEntry]) -> None:
    """Replace ``keyring.json`` atomically: readers see the old index or the new one."""
    (active,) = (e.kid for e in entries if e.status is KeyStatus.ACTIVE)
    index = {
        # Redundant with the statuses, kept for readers of the first format; checked on load.
        "active": active,
        "keys": [
            {
                "kid": e.kid,
                "alg": e.alg,
                "file": f"{e.kid}.pem",
                "status": e.status.value,
                "created_at": _iso(e.created_at),
                "activate_after": _iso(e.activate_after),
                **({"retired_at": _iso(e.retired_at)} if e.retired_at is not None else {}),
                **({"revoked_at": _iso(e.revoked_at)} if e.revoked_at is not None else {}),
            }
            for e in entries
        ],
        "updated_at": _iso(int(time.time())),
    }
    tmp = keys_dir / f".{INDEX}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(index, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(keys_dir / INDEX)
    _fsync_dir(keys_dir)


def _parse_index(data: bytes) -> tuple[KeyEntry, ...]:
    try:
        index = json.loads(data)
        active = index["active"]
        raw = index["keys"]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyRingError(f"{INDEX} is unreadable") from exc
    if not isinstance(raw, list) or not raw or not all(isinstance(r, dict) for r in raw):
        raise KeyRingError(f"{INDEX}: 'keys' must be a non-empty list of objects")
    # The first format had no statuses: the named key signs, any other one is retired.
    legacy = not any("status" in r for r in raw)
    entries: list[KeyEntry] = []
    for item in raw:
        kid, alg = item.get("kid"), item.get("alg")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise KeyRingError(f"{INDEX}: a kid is not an RFC 7638 thumbprint")
        if alg not in _ALGS:
            raise KeyRingError(f"{INDEX}: key {kid}: unsupported alg")
        if legacy:
            status = KeyStatus.ACTIVE if kid == active else KeyStatus.RETIRED
        else:
            try:
                status = KeyStatus(item.get("status"))
            except ValueError as exc:
                raise KeyRingError(f"{INDEX}: key {kid}: unknown status") from exc
        entry = KeyEntry(
            kid=kid,
            alg=alg,
            status=status,
            created_at=_seconds(item.get("created_at"), "created_at", kid),
            activate_after=_seconds(item.get("activate_after"), "activate_after", kid),
            retired_at=_seconds(item.get("retired_at"), "retired_at", kid),
            revoked_at=_seconds(item.get("revoked_at"), "revoked_at", kid),
        )
        if entry.status is KeyStatus.PENDING and entry.activate_after is None:
            raise KeyRingError(f"{INDEX}: pending key {kid} has no activate_after")
        entries.append(entry)
    kids = [e.kid for e in entries]
    if len(set(kids)) != len(kids):
        raise KeyRingError(f"{INDEX}: a kid appears twice")
    actives = [e.kid for e in entries if e.status is KeyStatus.ACTIVE]
    if len(actives) != 1:
        raise KeyRingError(f"{INDEX}: exactly one key must be active, found {len(actives)}")
    if actives[0] != active:
        raise KeyRingError(f"{INDEX}: 'active' does not name the key whose status is active")
    return tuple(entries)


def read_ring(
    keys_dir: Path,
    passphrase: bytes | None,
    *,
    index: bytes | None = None,
    known: Mapping[str, SigningKey] | None = None,
    chains: ChainLoader | None = None,
    lenient: bool = False,
) -> StoredRing:
    """Read the index (or parse ``index``, bytes already read) and the keys it publishes.

    ``known`` are keys already loaded: a kid is a hash of its key, so the file behind a kid
    cannot hold another one, and reloading the ring decrypts only keys new to the caller.

    A key file that cannot be loaded raises, unless ``lenient``: a running server must still
    apply what the index says (a revocation above all) when a new key file is not readable
    by it (written by another user, another passphrase); the key is then listed in
    ``unloadable`` and neither signs nor verifies.
    """
    if index is None:
        try:
            index = (keys_dir / INDEX).read_bytes()
        except OSError as exc:
            raise KeyRingError(f"{keys_dir / INDEX} is missing or unreadable") from exc
    entries = _parse_index(index)
    known = known or {}
    private: dict[str, SigningKey] = {}
    unloadable: dict[str, str] = {}
    for entry in entries:
        if not entry.published:
            continue  # a compromised key signs and proves nothing: no need to load it
        try:
            key = known.get(entry.kid) or _read_private(keys_dir / f"{entry.kid}.pem", passphrase)
            if key.alg != entry.alg:
                raise KeyRingError(f"{INDEX}: key {entry.kid}: alg does not match its file")
        except KeyRingError as exc:
            if not lenient:
                raise
            unloadable[entry.kid] = str(exc)
            continue
        if chains is not None:
            # Read again on every reload: a certificate imported for a known key counts.
            key = replace(key, x5c=chains(key))
        private[entry.kid] = key
    return StoredRing(entries=entries, private=private, unloadable=unloadable)


@contextlib.contextmanager
def locked(keys_dir: Path) -> Iterator[None]:
    """Hold the writers' lock: two ``thiqa keys`` commands (or two workers starting on an
    empty folder) must not both read the index, change it and write it back."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(keys_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def load_or_create(
    keys_dir: Path,
    *,
    alg: str = "ES256",
    passphrase: bytes | None = None,
    now: int | None = None,
    chains: ChainLoader | None = None,
) -> KeyRing:
    """The ring at ``now`` (default: the current time); generate the first key if there is
    none. A folder with key files but no index is refused, never silently replaced."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (keys_dir / INDEX).exists():
        with locked(keys_dir):
            if not (keys_dir / INDEX).exists():
                if any(keys_dir.glob("*.pem")):
                    raise KeyRingError(f"{keys_dir / INDEX} is missing or unreadable")
                created = int(time.time())
                key = generate_signing_key(alg)
                write_private(keys_dir, key, passphrase)
                write_index(
                    keys_dir,
                    [
                        KeyEntry(
                            kid=key.kid,
                            alg=key.alg,
                            status=KeyStatus.ACTIVE,
                            created_at=created,
                            activate_after=created,
                        )
                    ],
                )
    stored = read_ring(keys_dir, passphrase, chains=chains)
    return stored.at(int(time.time()) if now is None else now)
