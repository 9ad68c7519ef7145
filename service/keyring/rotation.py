"""Changing the issuer's keys: rotation (publish first, sign later) and compromise revocation.

A new key is published before it signs. ``rotate`` adds it as ``pending``: it is in the JWKS
and trusted by Thiqa's verifier at once, and starts signing only after
``THIQA_KEY_PUBLISH_SECONDS``, by which time every verifier that caches the JWKS has had the
chance to fetch it. The key it replaces is then ``retired``: it signs nothing new and stays
published, so what it signed verifies until it expires. ``activate_now`` skips the wait, for
operators who know that no verifier caches their JWKS.

``revoke`` is for a compromised key only, and takes effect at once: everything the key signed
fails with ``key_revoked``. If it was the signing key, a replacement signs immediately (an
emergency rotation: waiting would mean issuing nothing, or issuing with a key an attacker
holds), the pending key if one is already published, else a new one.

Only the keys folder's owner may change it. A key file is written 0600 by whoever runs the
command; written by another user (``sudo thiqa keys revoke``), the server could not read the
new key. The server would still apply the revocation (:mod:`service.keyring.live`) but sign
nothing until the file is readable, so the command refuses instead and says how to run it.

Every change runs under the ring's lock, on the ring as it stands (a pending key whose time
has come is made active in the file first), and ends with one atomic replace of the index.
Running servers notice within a second (:mod:`service.keyring.live`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

try:  # POSIX; elsewhere files have no owner to compare.
    import pwd
except ImportError:  # pragma: no cover - Windows
    pwd = None  # type: ignore[assignment]

from service.core.keys import SigningKey, generate_signing_key
from service.keyring.keyring import (
    KeyEntry,
    KeyRing,
    KeyRingError,
    KeyStatus,
    StoredRing,
    locked,
    read_ring,
    write_index,
    write_private,
)

#: Certifies a new key before the index names it (``Pki.certify_issuer_key``), so a key is
#: never published, let alone signing, without its certificate.
Certify = Callable[[SigningKey], object]

__all__ = [
    "Certify",
    "KeyChangeRefused",
    "Revocation",
    "UnknownKid",
    "require_owner",
    "revoke",
    "rotate",
    "settle",
]


class KeyChangeRefused(KeyRingError):
    """The change cannot be made as asked; the message says why and what to do instead."""


class UnknownKid(KeyChangeRefused):
    pass


@dataclass(frozen=True, slots=True)
class Revocation:
    revoked: KeyEntry
    #: The key that signs from now on, if the revoked key was the signing key.
    replacement: KeyEntry | None
    #: The replacement was generated now (False: a pending key was brought forward).
    generated: bool = False
    already: bool = False


def require_owner(keys_dir: Path) -> None:
    """Refuse a change by anyone but the folder's owner (root included): the files it would
    write are 0600 and would be unreadable to the server, which runs as the owner."""
    try:
        owner = keys_dir.stat().st_uid
    except FileNotFoundError:
        return  # created by this command, so owned by its user
    if pwd is None or owner == os.geteuid():
        return
    try:
        name = pwd.getpwuid(owner).pw_name
    except KeyError:
        name = str(owner)
    raise KeyChangeRefused(
        f"{keys_dir} is owned by {name}, not by the user running this command: a key "
        f"written now would be unreadable to the server. Run it as that user "
        f"(sudo -u {name} thiqa keys ...). Nothing was changed."
    )


def _settled(keys_dir: Path, passphrase: bytes | None, now: int) -> StoredRing:
    """The stored ring, with any activation that is due written to the file first."""
    stored = read_ring(keys_dir, passphrase)
    entries = stored.effective(now)
    if entries != stored.entries:
        write_index(keys_dir, entries)
        stored = StoredRing(entries=entries, private=stored.private)
    return stored


def settle(keys_dir: Path, *, passphrase: bytes | None, now: int | None = None) -> KeyRing:
    """Write down activations that are due (readers apply them anyway; this keeps the file
    saying what is true) and return the ring."""
    now = int(time.time()) if now is None else now
    require_owner(keys_dir)
    with locked(keys_dir):
        return _settled(keys_dir, passphrase, now).at(now)


def rotate(
    keys_dir: Path,
    *,
    alg: str,
    passphrase: bytes | None,
    publish_seconds: int,
    activate_now: bool = False,
    now: int | None = None,
    certify: Certify | None = None,
) -> KeyEntry:
    """Add a new key: pending for ``publish_seconds`` (published, not signing), then active.
    With ``activate_now`` or a zero delay it signs at once. Returns its entry."""
    now = int(time.time()) if now is None else now
    require_owner(keys_dir)
    with locked(keys_dir):
        # Loading every key first proves the passphrase opens the ring the new key joins.
        stored = _settled(keys_dir, passphrase, now)
        waiting = [e for e in stored.entries if e.status is KeyStatus.PENDING]
        if waiting:
            raise KeyChangeRefused(
                f"key {waiting[0].kid} is already waiting to be published; it signs from "
                f"{_when(waiting[0].activate_after)}. Rotate again after that."
            )
        key = generate_signing_key(alg)
        immediate = activate_now or publish_seconds <= 0
        entry = KeyEntry(
            kid=key.kid,
            alg=key.alg,
            status=KeyStatus.ACTIVE if immediate else KeyStatus.PENDING,
            created_at=now,
            activate_after=now if immediate else now + publish_seconds,
        )
        entries = [
            replace(e, status=KeyStatus.RETIRED, retired_at=now)
            if immediate and e.status is KeyStatus.ACTIVE
            else e
            for e in stored.entries
        ]
        # Key file first, index last: until the index names it, the key does not exist.
        write_private(keys_dir, key, passphrase)
        if certify is not None:
            certify(key)
        write_index(keys_dir, [*entries, entry])
        return entry


def revoke(
    keys_dir: Path,
    kid: str,
    *,
    alg: str,
    passphrase: bytes | None,
    now: int | None = None,
    certify: Certify | None = None,
) -> Revocation:
    """Revoke a compromised key. If it signs, a replacement signs from now on: the pending
    key if there is one (already published), else a new ``alg`` key."""
    now = int(time.time()) if now is None else now
    require_owner(keys_dir)
    with locked(keys_dir):
        stored = _settled(keys_dir, passphrase, now)
        target = next((e for e in stored.entries if e.kid == kid), None)
        if target is None:
            raise UnknownKid(f"no key with kid {kid} in {keys_dir} (see: thiqa keys show)")
        if target.status is KeyStatus.REVOKED:
            return Revocation(revoked=target, replacement=None, already=True)
        revoked = replace(target, status=KeyStatus.REVOKED, revoked_at=now)
        entries = [revoked if e.kid == kid else e for e in stored.entries]
        replacement: KeyEntry | None = None
        generated = False
        if target.status is KeyStatus.ACTIVE:
            pending = [e for e in entries if e.status is KeyStatus.PENDING]
            if pending:
                chosen = max(pending, key=lambda e: (e.created_at or 0, e.kid))
                replacement = replace(chosen, status=KeyStatus.ACTIVE, activate_after=now)
                entries = [replacement if e.kid == chosen.kid else e for e in entries]
            else:
                key = generate_signing_key(alg)
                replacement = KeyEntry(
                    kid=key.kid,
                    alg=key.alg,
                    status=KeyStatus.ACTIVE,
                    created_at=now,
                    activate_after=now,
                )
                write_private(keys_dir, key, passphrase)
                if certify is not None:
                    certify(key)
                entries.append(replacement)
                generated = True
        write_index(keys_dir, entries)
        return Revocation(revoked=revoked, replacement=replacement, generated=generated)


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
