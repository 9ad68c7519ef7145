"""What ``thiqa keys show`` prints: the issuer's keys with their statuses and the JWKS, as
blocks for people or as one JSON document for programs. Public keys only, never a private
one."""

from __future__ import annotations

import time
from typing import Any

from cryptography import x509

from service.cli.blocks import block
from service.core.x509 import common_name, parse_x5c
from service.keyring.certificates import Pki
from service.keyring.keyring import KeyEntry, KeyRing
from service.settings import Settings

__all__ = ["certificate_blocks", "key_blocks", "keys_document"]


def _leaf(ring: KeyRing, kid: str) -> x509.Certificate | None:
    key = ring.keys.get(kid)
    if key is None or not key.x5c:
        return None
    return parse_x5c(list(key.x5c))[0]


def _expiry(certificate: x509.Certificate | None) -> str | None:
    if certificate is None:
        return None
    return _utc(int(certificate.not_valid_after_utc.timestamp()))


def _utc(seconds: int | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def _rfc3339(seconds: int | None) -> str | None:
    return None if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _status(entry: KeyEntry, ring: KeyRing) -> str:
    return entry.status.value + (" (signing)" if entry.kid == ring.active_kid else "")


def key_blocks(ring: KeyRing, settings: Settings, width: int) -> list[str]:
    """The issuer, then one block per key (kid first, whole, as `keys revoke` takes it)."""
    lines = block(
        "Issuer",
        [("url", settings.issuer_url), ("keys in", str(settings.keys_dir.resolve()))],
        width,
    )
    for entry in ring.entries:
        lines.append("")
        lines += block(
            entry.kid,
            [
                ("alg", entry.alg),
                ("status", _status(entry, ring)),
                ("created", _utc(entry.created_at)),
                ("signs from", _utc(entry.activate_after)),
                ("retired", _utc(entry.retired_at) if entry.retired_at is not None else ""),
                ("revoked", _utc(entry.revoked_at) if entry.revoked_at is not None else ""),
                ("cert until", _expiry(_leaf(ring, entry.kid)) or "no certificate"),
            ],
            width,
        )
    return lines


def keys_document(ring: KeyRing, settings: Settings) -> dict[str, Any]:
    """Every key with its status and times (RFC 3339, null when unknown), and the JWKS as
    published at ``/.well-known/jwt-vc-issuer`` (pending, active and retired keys)."""
    return {
        "issuer": settings.issuer_url,
        "keys": [
            {
                "kid": entry.kid,
                "alg": entry.alg,
                "status": entry.status.value,
                "signing": entry.kid == ring.active_kid,
                "created_at": _rfc3339(entry.created_at),
                "activate_after": _rfc3339(entry.activate_after),
                "retired_at": _rfc3339(entry.retired_at),
                "revoked_at": _rfc3339(entry.revoked_at),
                "certificate_expires_at": _certificate_expiry(ring, entry.kid),
            }
            for entry in ring.entries
        ],
        "jwks": ring.jwks(),
    }


def _certificate_expiry(ring: KeyRing, kid: str) -> str | None:
    leaf = _leaf(ring, kid)
    return None if leaf is None else _rfc3339(int(leaf.not_valid_after_utc.timestamp()))


def certificate_blocks(pki: Pki, ring: KeyRing, settings: Settings, width: int) -> list[str]:
    """The root, then each issuer key's leaf and the access certificate, with expiry."""
    if not pki.exists:
        return ["No certificates: run `thiqa pki init` or import a PKI's (see README)."]
    root = pki.root()
    lines = block(
        "Root",
        [
            ("subject", common_name(root) or root.subject.rfc4514_string()),
            ("until", _expiry(root) or "-"),
            ("can issue", "yes (development root)" if pki.can_issue else "no (imported)"),
        ],
        width,
    )
    for entry in ring.entries:
        leaf = _leaf(ring, entry.kid)
        if leaf is None:
            continue
        lines.append("")
        lines += block(
            f"issuer key {entry.kid}",
            [
                ("subject", common_name(leaf) or leaf.subject.rfc4514_string()),
                ("until", _expiry(leaf) or "-"),
            ],
            width,
        )
    if pki.has_access:
        from service.keyring.certificates import access_host

        access = pki.load_access(host=access_host(settings.issuer_url), now=int(time.time())).leaf
        lines.append("")
        lines += block(
            "relying-party access",
            [
                ("subject", common_name(access) or access.subject.rfc4514_string()),
                ("until", _expiry(access) or "-"),
            ],
            width,
        )
    return lines
