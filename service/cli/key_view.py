"""What ``thiqa keys show`` prints: the issuer's keys with their statuses and the JWKS, as
blocks for people or as one JSON document for programs. Public keys only, never a private
one."""

from __future__ import annotations

import time
from typing import Any

from service.cli.blocks import block
from service.keyring.keyring import KeyEntry, KeyRing
from service.settings import Settings

__all__ = ["key_blocks", "keys_document"]


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
            }
            for entry in ring.entries
        ],
        "jwks": ring.jwks(),
    }
