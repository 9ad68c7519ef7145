"""Keys and the algorithms they are allowed to use.

Every key carries the one JWS algorithm it may be used with, fixed when the key is loaded;
the ``alg`` a token names is only compared against it, never used to choose how to verify
(RFC 8725 §3.1). Public keys from JWKs (``cnf.jwk``, a JWKS) are parsed strictly: exact
members, exact coordinate sizes, a point on the named curve, never private material.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.core.encoding import EncodingError, b64url_decode, b64url_encode, json_dumps

__all__ = [
    "ALGORITHMS",
    "InvalidSignatureError",
    "JWKError",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "VerificationKey",
    "generate_signing_key",
    "jwk_thumbprint",
    "parse_public_jwk",
    "public_jwk",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class _ECProfile:
    alg: str
    crv: str
    curve: ec.EllipticCurve
    hash: hashes.HashAlgorithm
    size: int  # bytes per coordinate and per signature half
    order: int
    prime: int  # of the field: coordinates are below it


_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P384_ORDER: Final = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)

_P256_PRIME: Final = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P384_PRIME: Final = 2**384 - 2**128 - 2**96 + 2**32 - 1

_EC_PROFILES: Final = {
    "ES256": _ECProfile(
        "ES256", "P-256", ec.SECP256R1(), hashes.SHA256(), 32, _P256_ORDER, _P256_PRIME
    ),
    "ES384": _ECProfile(
        "ES384", "P-384", ec.SECP384R1(), hashes.SHA384(), 48, _P384_ORDER, _P384_PRIME
    ),
}
_EC_BY_CURVE: Final = {p.crv: p for p in _EC_PROFILES.values()}

#: Every algorithm Thiqa will verify. Anything else, ``none`` and HMAC first, is refused.
ALGORITHMS: Final = frozenset({*_EC_PROFILES, "EdDSA"})


class JWKError(ValueError):
    """A JWK that is not a well-formed public key Thiqa supports."""


class InvalidSignatureError(Exception):
    """A signature that is not this key's over this input, whatever was wrong with it.

    One error for every case (wrong length, r or s out of range, a good signature over other
    bytes) so that no caller, and no error message, tells an attacker which one it was.
    """


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key bound to the single algorithm it verifies."""

    kid: str
    alg: str
    key: PublicKey = field(repr=False)
    #: The algorithm and the public key's bytes: what a remembered signature check is keyed
    #: by (:mod:`service.core.memo`), so a check never carries over to another key.
    fingerprint: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            raw = self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        else:
            raw = self.key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        object.__setattr__(self, "fingerprint", self.alg.encode("ascii") + b":" + raw)

    def verify(self, signature: bytes, signing_input: bytes) -> None:
        """Return only for a valid signature by this key; raise :class:`InvalidSignatureError`
        for anything else, malformed signatures included.

        It raises rather than answers False, as pyca/cryptography's keys do, so a caller that
        forgets to look at the answer fails closed instead of accepting the token.
        """
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            if len(signature) != 64:
                raise InvalidSignatureError
            try:
                self.key.verify(signature, signing_input)
            except InvalidSignature:
                raise InvalidSignatureError from None
            return
        profile = _EC_PROFILES[self.alg]
        if len(signature) != 2 * profile.size:
            raise InvalidSignatureError
        r = int.from_bytes(signature[: profile.size], "big")
        s = int.from_bytes(signature[profile.size :], "big")
        # OpenSSL refuses these too; checking here keeps the rule visible and cheap.
        if not (0 < r < profile.order and 0 < s < profile.order):
            raise InvalidSignatureError
        try:
            self.key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(profile.hash))
        except InvalidSignature:
            raise InvalidSignatureError from None

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.key), "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with its ``kid`` and the one algorithm it signs with."""

    kid: str
    alg: str
    key: PrivateKey = field(repr=False)
    #: The key's certificate chain as JOSE ``x5c`` (leaf first, no root), when it has one:
    #: every JWS it signs then carries it beside ``kid`` (HAIP 1.0 §6.1.1).
    x5c: tuple[str, ...] = field(default=(), repr=False)

    def sign(self, signing_input: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(signing_input)
        profile = _EC_PROFILES[self.alg]
        r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(profile.hash)))
        return r.to_bytes(profile.size, "big") + s.to_bytes(profile.size, "big")

    def verification_key(self) -> VerificationKey:
        return VerificationKey(kid=self.kid, alg=self.alg, key=self.key.public_key())


def algorithm_for(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    profile = _EC_BY_CURVE.get(_curve_name(key.curve))
    if profile is None:
        raise JWKError("unsupported curve")
    return profile.alg


def _curve_name(curve: ec.EllipticCurve) -> str:
    return {"secp256r1": "P-256", "secp384r1": "P-384"}.get(curve.name, curve.name)


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    """The RFC 7517 members of a public key, without ``kid`` or ``alg``."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    profile = _EC_BY_CURVE[_curve_name(key.curve)]
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": profile.crv,
        "x": b64url_encode(numbers.x.to_bytes(profile.size, "big")),
        "y": b64url_encode(numbers.y.to_bytes(profile.size, "big")),
    }


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint: the required members, sorted, no white space."""
    required = ("crv", "kty", "x") if jwk.get("kty") == "OKP" else ("crv", "kty", "x", "y")
    canonical = json_dumps({name: jwk[name] for name in required})
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def generate_signing_key(alg: str = "ES256") -> SigningKey:
    key: PrivateKey
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    elif alg in _EC_PROFILES:
        key = ec.generate_private_key(_EC_PROFILES[alg].curve)
    else:
        raise JWKError("unsupported algorithm")
    return SigningKey(kid=jwk_thumbprint(public_jwk(key)), alg=alg, key=key)


_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def parse_public_jwk(jwk: Any, *, kid: str | None = None) -> VerificationKey:
    """Parse a public JWK strictly into a key bound to its algorithm.

    Refuses private members (a holder that publishes ``d`` has no key left to protect),
    wrong coordinate sizes, points off the curve, an ``alg`` that contradicts the curve, and
    a ``use`` or ``key_ops`` that says the key is not for verifying signatures.
    """
    if not isinstance(jwk, dict):
        raise JWKError("JWK is not an object")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise JWKError("JWK contains private key material")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not isinstance(kty, str) or not isinstance(crv, str):
        raise JWKError("JWK needs kty and crv")
    key: PublicKey
    try:
        if kty == "OKP" and crv == "Ed25519":
            alg = "EdDSA"
            key = ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", 32))
        elif kty == "EC" and crv in _EC_BY_CURVE:
            profile = _EC_BY_CURVE[crv]
            alg = profile.alg
            x_bytes = _coordinate(jwk, "x", profile.size)
            y_bytes = _coordinate(jwk, "y", profile.size)
            # x + p would be a second spelling of the same key with another thumbprint.
            if (
                int.from_bytes(x_bytes, "big") >= profile.prime
                or int.from_bytes(y_bytes, "big") >= profile.prime
            ):
                raise JWKError("JWK coordinates out of range")
            # cryptography refuses points that are not on the curve (invalid-curve attacks);
            # from the encoded point, as that is several times faster than from numbers.
            key = ec.EllipticCurvePublicKey.from_encoded_point(
                profile.curve, b"\x04" + x_bytes + y_bytes
            )
        else:
            raise JWKError("unsupported key type or curve")
    except ValueError as exc:
        if isinstance(exc, JWKError):
            raise
        raise JWKError("JWK is not a valid public key") from exc
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise JWKError("JWK alg does not match its curve")
    # RFC 7517 §4.2-4.3: a key its owner published for encryption is not a signature key.
    use, key_ops = jwk.get("use"), jwk.get("key_ops")
    if use is not None and use != "sig":
        raise JWKError("JWK use is not sig")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise JWKError("JWK key_ops do not include verify")
    return VerificationKey(kid=kid if kid is not None else jwk_thumbprint(jwk), alg=alg, key=key)


def _coordinate(jwk: dict[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise JWKError(f"JWK member {name} missing")
    try:
        raw = b64url_decode(value)
    except (EncodingError, UnicodeEncodeError) as exc:
        raise JWKError(f"JWK member {name} is not base64url") from exc
    if len(raw) != size:
        raise JWKError(f"JWK member {name} has the wrong length")
    return raw
