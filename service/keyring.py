"""The issuer's keys on disk, under the operator's control.

``keys/`` holds one PKCS#8 PEM file per key, named by its ``kid`` (RFC 7638 thumbprint), and
``keyring.json`` saying which key signs. On first start with no key, one is generated. Private
key files are created with mode 0600 in one step (no window where they are world-readable) and
are encrypted when a passphrase is configured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .core.keys import (
    SigningKey,
    VerificationKey,
    algorithm_for,
    generate_signing_key,
    jwk_thumbprint,
    public_jwk,
)

__all__ = ["KeyRing", "KeyRingError", "load_or_create"]

_INDEX = "keyring.json"


class KeyRingError(RuntimeError):
    """The keys folder cannot be read as a key ring (wrong passphrase, edited files...)."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    active: SigningKey
    keys: Mapping[str, SigningKey]

    def verification_keys(self) -> dict[str, VerificationKey]:
        return {kid: key.verification_key() for kid, key in self.keys.items()}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.verification_key().public_jwk() for key in self.keys.values()]}


def _encryption(passphrase: bytes | None) -> serialization.KeySerializationEncryption:
    if passphrase:
        return serialization.BestAvailableEncryption(passphrase)
    return serialization.NoEncryption()


def _write_private(path: Path, key: SigningKey, passphrase: bytes | None) -> None:
    pem = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        _encryption(passphrase),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _read_private(path: Path, passphrase: bytes | None) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyRingError(f"cannot load {path.name}: wrong passphrase or not a key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyRingError(f"{path.name}: unsupported key type")
    kid = jwk_thumbprint(public_jwk(key))
    if path.stem != kid:
        raise KeyRingError(f"{path.name}: file name does not match the key's thumbprint")
    return SigningKey(kid=kid, alg=algorithm_for(key), key=key)


def _write_index(keys_dir: Path, active: str, keys: Mapping[str, SigningKey]) -> None:
    index = {
        "active": active,
        "keys": [
            {"kid": kid, "alg": key.alg, "file": f"{kid}.pem"} for kid, key in keys.items()
        ],
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = keys_dir / f".{_INDEX}.tmp"
    tmp.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    tmp.replace(keys_dir / _INDEX)


def load_or_create(
    keys_dir: Path, *, alg: str = "ES256", passphrase: bytes | None = None
) -> KeyRing:
    """Load every key in ``keys_dir``; generate the first one if there is none."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = {key.kid: key for key in map(
        lambda p: _read_private(p, passphrase), sorted(keys_dir.glob("*.pem"))
    )}
    index_path = keys_dir / _INDEX
    if not keys:
        key = generate_signing_key(alg)
        _write_private(keys_dir / f"{key.kid}.pem", key, passphrase)
        keys = {key.kid: key}
        _write_index(keys_dir, key.kid, keys)
        return KeyRing(active=key, keys=keys)
    try:
        active_kid = json.loads(index_path.read_text(encoding="utf-8"))["active"]
    except (OSError, ValueError, KeyError) as exc:
        raise KeyRingError(f"{index_path} is missing or unreadable") from exc
    if active_kid not in keys:
        raise KeyRingError(f"active key {active_kid} has no key file")
    return KeyRing(active=keys[active_kid], keys=keys)
