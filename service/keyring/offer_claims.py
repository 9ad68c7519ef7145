"""The key that seals credential offers' parked claims: in the keys folder, never in Redis.

An offer waits in Redis for the wallet, minutes at most, with the claims to sign. Redis writes
every command to its append-only file and snapshots its memory, and both outlive the offer
(until the file is rewritten, and in every backup). So the claims are sealed before they reach
Redis, with AES-GCM (``cryptography``'s AEAD recipe) under a 256-bit key kept in
``keys/offer-claims-keys.json`` (mode 0600, beside the signing keys and as well guarded):
Redis, its files and its backups hold only ciphertext. The associated data binds a sealed
value to its offer id and key id, so a value copied onto another offer does not open.

Rotation (``thiqa keys rotate-claims``) adds a new key that seals from then on; the old one
stays to open offers sealed before, and is dropped at a later rotation once every offer it
sealed has expired. A sealed value names its key: ``v1.<kid>.<base64url(nonce | ciphertext)>``.

The file is read on each use (a small file, and offers are not the hot path), so every worker
follows a rotation at once; its bytes are parsed only when they change.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.core.encoding import EncodingError, b64url_decode, b64url_encode
from service.errors import KeyRingUnavailable
from service.keyring.keyring import locked

__all__ = ["FILE", "OfferClaimsSealer", "UnsealError", "rotate_offer_claims_key"]

FILE: Final = "offer-claims-keys.json"
_VERSION: Final = "v1"
_NONCE_BYTES: Final = 12
_KID_BYTES: Final = 8


class UnsealError(Exception):
    """A sealed value that cannot be opened: its key is gone, or it was altered or moved."""


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    secret: bytes
    created_at: int
    retired_at: int | None = None


def _associated_data(offer_id: str, kid: str) -> bytes:
    return f"thiqa offer claims {_VERSION}|{offer_id}|{kid}".encode("ascii")


def _parse(data: bytes) -> list[_Key]:
    try:
        raw = json.loads(data)["keys"]
        keys = [
            _Key(
                kid=str(item["kid"]),
                secret=b64url_decode(item["key"]),
                created_at=int(item["created_at"]),
                retired_at=None if item.get("retired_at") is None else int(item["retired_at"]),
            )
            for item in raw
        ]
    except (ValueError, KeyError, TypeError, EncodingError) as exc:
        raise KeyRingUnavailable(f"{FILE} is not readable as a key file.") from exc
    if not keys or any(len(k.secret) != 32 for k in keys):
        raise KeyRingUnavailable(f"{FILE} holds no usable key.")
    return keys


def _write(keys_dir: Path, keys: list[_Key]) -> None:
    document = {
        "keys": [
            {
                "kid": k.kid,
                "key": b64url_encode(k.secret),
                "created_at": k.created_at,
                **({"retired_at": k.retired_at} if k.retired_at is not None else {}),
            }
            for k in keys
        ]
    }
    tmp = keys_dir / f".{FILE}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(keys_dir / FILE)


def _new_key(now: int) -> _Key:
    return _Key(kid=secrets.token_hex(_KID_BYTES), secret=AESGCM.generate_key(256), created_at=now)


def rotate_offer_claims_key(keys_dir: Path, *, now: int, keep_seconds: int) -> str:
    """Add a key that seals from now on; drop keys retired more than ``keep_seconds`` ago
    (the offer lifetime: nothing they sealed can still be waiting). Returns the new kid."""
    with locked(keys_dir):
        path = keys_dir / FILE
        keys = _parse(path.read_bytes()) if path.exists() else []
        kept = [
            k if k.retired_at is not None else _Key(k.kid, k.secret, k.created_at, now)
            for k in keys
            if k.retired_at is None or now - k.retired_at <= keep_seconds
        ]
        new = _new_key(now)
        _write(keys_dir, [*kept, new])
        return new.kid


class OfferClaimsSealer:
    """Seals and opens parked claims with the keys in ``keys_dir`` (created on first use)."""

    def __init__(self, keys_dir: Path) -> None:
        self._dir = keys_dir
        self._lock = threading.Lock()
        self._data: bytes | None = None
        self._keys: list[_Key] = []

    def _current(self) -> list[_Key]:
        path = self._dir / FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            with locked(self._dir):
                if not path.exists():
                    _write(self._dir, [_new_key(int(time.time()))])
            data = path.read_bytes()
        except OSError as exc:
            raise KeyRingUnavailable(f"{FILE} cannot be read.") from exc
        with self._lock:
            if data != self._data:
                self._keys, self._data = _parse(data), data
            return self._keys

    def seal(self, plaintext: bytes, *, offer_id: str) -> str:
        key = self._current()[-1]
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(key.secret).encrypt(nonce, plaintext, _associated_data(offer_id, key.kid))
        return f"{_VERSION}.{key.kid}.{b64url_encode(nonce + sealed)}"

    def open(self, sealed: str, *, offer_id: str) -> bytes:
        try:
            version, kid, body = sealed.split(".")
            blob = b64url_decode(body)
        except (ValueError, EncodingError) as exc:
            raise UnsealError("not a sealed value") from exc
        if version != _VERSION:
            raise UnsealError("unknown version")
        key = next((k for k in self._current() if k.kid == kid), None)
        if key is None:
            raise UnsealError("its key is no longer kept")
        try:
            return AESGCM(key.secret).decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated_data(offer_id, kid)
            )
        except InvalidTag as exc:
            raise UnsealError("altered, or sealed for another offer") from exc
