"""The wallet file: the holder's private keys and the credentials bound to them.

One JSON file (mode 0600, written atomically) so a tester can keep a wallet between commands.
Each credential gets its own key: two verifiers comparing notes cannot link two credentials
through a shared ``cnf`` key. Private keys never leave this file; they are a test wallet's,
not a citizen's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.encoding import EncodingError, b64url_decode, b64url_encode, json_loads
from service.core.keys import SigningKey, generate_signing_key, jwk_thumbprint, public_jwk
from service.core.reasons import VerificationFailure
from service.core.sdjwt import split

__all__ = ["StoredCredential", "Wallet", "WalletError", "credential_payload"]


class WalletError(RuntimeError):
    pass


def credential_payload(credential: str) -> dict[str, Any]:
    """The issuer-signed claims of an SD-JWT (digests for the personal ones), unverified:
    for the holder's own bookkeeping, after the credential was checked on receipt."""
    payload: dict[str, Any] = json.loads(b64url_decode(credential.split("~", 1)[0].split(".")[1]))
    return payload


@dataclass(frozen=True, slots=True)
class StoredCredential:
    id: str
    credential: str
    key_id: str
    issuer: str
    vct: str
    received_at: int
    format: str = "dc+sd-jwt"

    def payload(self) -> dict[str, Any]:
        """The issuer-signed claims (digests for the personal ones)."""
        return credential_payload(self.credential)


def _private_jwk(key: SigningKey) -> dict[str, str]:
    if not isinstance(key.key, ec.EllipticCurvePrivateKey) or key.alg != "ES256":
        raise WalletError("the test wallet keeps ES256 keys only")
    d = key.key.private_numbers().private_value.to_bytes(32, "big")
    return {**public_jwk(key.key), "d": b64url_encode(d)}


def _check(path: Path, stored: StoredCredential, keys: dict[str, SigningKey]) -> None:
    """Refuse an entry every command would trip over later: one that is not an SD-JWT whose
    issuer JWT carries a JSON object, or whose key is not in the file. A hand-edited file is
    the usual cause; the message names the entry so the tester can remove it."""
    problem = None
    if not isinstance(stored.credential, str):
        problem = "is not a string"
    else:
        try:
            segments = split(stored.credential).issuer_jwt.split(".")
            if len(segments) != 3:
                raise EncodingError("not a compact JWS")
            payload = json_loads(b64url_decode(segments[1]))
        except (VerificationFailure, EncodingError):
            payload = None
        if not isinstance(payload, dict):
            problem = "is not an SD-JWT with a JSON payload"
        elif not isinstance(stored.key_id, str) or stored.key_id not in keys:
            problem = "has no key in the file"
    if problem is not None:
        raise WalletError(f"{path}: credential {stored.id} {problem}")


def _load_private(jwk: dict[str, str]) -> SigningKey:
    d = int.from_bytes(b64url_decode(jwk["d"]), "big")
    key = ec.derive_private_key(d, ec.SECP256R1())
    kid = jwk_thumbprint(public_jwk(key))
    return SigningKey(kid=kid, alg="ES256", key=key)


class Wallet:
    def __init__(
        self,
        path: Path,
        keys: dict[str, SigningKey],
        credentials: list[StoredCredential],
        trust: list[str] | None = None,
    ) -> None:
        self.path = path
        self._keys = keys
        self._credentials = credentials
        #: PEM roots of relying-party access certificates this wallet trusts
        #: (``thiqa wallet trust add``): a signed request is answered only under one.
        self._trust = list(trust or [])

    def trust_anchors(self) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in self._trust]

    def add_trust(self, certificate: x509.Certificate) -> bool:
        """Trust ``certificate`` as a relying-party root; False if it already was."""
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        if pem in self._trust:
            return False
        self._trust.append(pem)
        return True

    @classmethod
    def open(cls, path: Path) -> Wallet:
        if not path.exists():
            return cls(path, {}, [])
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {k.kid: k for k in map(_load_private, data.get("keys", []))}
            credentials = [StoredCredential(**c) for c in data.get("credentials", [])]
            trust = [str(pem) for pem in data.get("trust", [])]
            for pem in trust:
                x509.load_pem_x509_certificate(pem.encode("ascii"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WalletError(f"{path} is not a Thiqa wallet file") from exc
        for stored in credentials:
            _check(path, stored, keys)
        return cls(path, keys, credentials, trust)

    def new_key(self) -> SigningKey:
        key = generate_signing_key("ES256")
        self._keys[key.kid] = key
        return key

    def key(self, key_id: str) -> SigningKey:
        try:
            return self._keys[key_id]
        except KeyError:
            raise WalletError("the wallet has no key for this credential") from None

    def add(self, credential: str, key: SigningKey) -> StoredCredential:
        payload = credential_payload(credential)
        stored = StoredCredential(
            id=hashlib.sha256(credential.encode("ascii")).hexdigest()[:12],
            credential=credential,
            key_id=key.kid,
            issuer=str(payload.get("iss", "")),
            vct=str(payload.get("vct", "")),
            received_at=int(time.time()),
        )
        self._credentials = [c for c in self._credentials if c.id != stored.id] + [stored]
        return stored

    def credentials(self) -> list[StoredCredential]:
        return list(self._credentials)

    def get(self, credential_id: str) -> StoredCredential:
        matches = [c for c in self._credentials if c.id.startswith(credential_id)]
        if len(matches) != 1:
            raise WalletError(f"no single credential matches {credential_id!r}")
        return matches[0]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "keys": [_private_jwk(k) for k in self._keys.values()],
            "credentials": [asdict(c) for c in self._credentials],
            "trust": self._trust,
        }
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=2)
        tmp.replace(self.path)
