"""COSE_Sign1, COSE_Mac0 and COSE_Key (RFC 9052/9053) as mdocs and CWT status lists use them.

Written over cbor2 and cryptography rather than a COSE library: ``cwt`` and ``pycose`` decode
the untrusted bytes themselves with plain cbor2 (no duplicate-key, tag or trailing-byte
checks), while here every structure has already passed :mod:`service.core.mdoc.cbor`; the
signing structure is one array, and the algorithm allow-list stays Thiqa's (ES256/ES384 on
P-256/P-384, never one the header chooses).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from service.core.mdoc.cbor import TAG_COSE_SIGN1, CBORError, decode, encode
from service.core.reasons import Reason, VerificationFailure

__all__ = [
    "ALG_ES256",
    "ALG_ES384",
    "HEADER_ALG",
    "HEADER_TYP",
    "HEADER_X5CHAIN",
    "CoseSign1",
    "cose_key",
    "parse_mac0",
    "parse_sign1",
    "public_key_from_cose",
    "sign1",
    "verify_mac0",
]

HEADER_ALG: Final = 1
HEADER_KID: Final = 4
HEADER_TYP: Final = 16
HEADER_X5CHAIN: Final = 33
ALG_ES256: Final = -7
ALG_ES384: Final = -35
ALG_HMAC256: Final = 5


@dataclass(frozen=True, slots=True)
class _Algorithm:
    curve: type[ec.EllipticCurve]
    hash: hashes.HashAlgorithm
    size: int


_ALGORITHMS: Final = {
    ALG_ES256: _Algorithm(ec.SECP256R1, hashes.SHA256(), 32),
    ALG_ES384: _Algorithm(ec.SECP384R1, hashes.SHA384(), 48),
}
_COSE_CURVES: Final = {1: ec.SECP256R1, 2: ec.SECP384R1}
_CURVE_IDS: Final = {"secp256r1": 1, "secp384r1": 2}


@dataclass(frozen=True, slots=True)
class CoseSign1:
    """A parsed COSE_Sign1; ``payload`` is None when detached."""

    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes | None
    signature: bytes

    @property
    def alg(self) -> Any:
        return self.protected.get(HEADER_ALG)

    def verify(self, key: ec.EllipticCurvePublicKey, *, detached: bytes | None = None) -> None:
        """Raise ``invalid_signature`` unless the signature holds; ``unsupported_algorithm``
        when the header's algorithm is not one this key may use."""
        algorithm = _ALGORITHMS.get(self.alg) if isinstance(self.alg, int) else None
        if algorithm is None or not isinstance(key.curve, algorithm.curve):
            raise VerificationFailure(Reason.UNSUPPORTED_ALGORITHM)
        payload = self.payload if detached is None else detached
        if payload is None or len(self.signature) != 2 * algorithm.size:
            raise VerificationFailure(Reason.INVALID_SIGNATURE)
        r = int.from_bytes(self.signature[: algorithm.size], "big")
        s = int.from_bytes(self.signature[algorithm.size :], "big")
        to_be_signed = _sig_structure(self.protected_bytes, payload)
        try:
            key.verify(encode_dss_signature(r, s), to_be_signed, ec.ECDSA(algorithm.hash))
        except InvalidSignature:
            raise VerificationFailure(Reason.INVALID_SIGNATURE) from None

    def array(self) -> list[Any]:
        return [self.protected_bytes, dict(self.unprotected), self.payload, self.signature]


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return encode(["Signature1", protected, b"", payload])


def sign1(
    payload: bytes | None,
    key: ec.EllipticCurvePrivateKey,
    *,
    protected: Mapping[int, Any] | None = None,
    unprotected: Mapping[int, Any] | None = None,
    detached: bytes | None = None,
) -> CoseSign1:
    """Sign ``payload`` (or, with ``payload=None``, the ``detached`` bytes) with ES256/ES384."""
    alg = ALG_ES256 if isinstance(key.curve, ec.SECP256R1) else ALG_ES384
    algorithm = _ALGORITHMS[alg]
    headers = {HEADER_ALG: alg, **(protected or {})}
    protected_bytes = encode(headers)
    signed = payload if payload is not None else detached
    if signed is None:
        raise ValueError("nothing to sign")
    der = key.sign(_sig_structure(protected_bytes, signed), ec.ECDSA(algorithm.hash))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(algorithm.size, "big") + s.to_bytes(algorithm.size, "big")
    return CoseSign1(protected_bytes, headers, dict(unprotected or {}), payload, signature)


def parse_sign1(item: Any, *, tagged: bool | None = None) -> CoseSign1:
    """A COSE_Sign1 from its decoded array (``tagged``: True requires tag 18, False forbids
    it, None accepts both, as ISO/IEC 18013-5 does for issuerAuth)."""
    if isinstance(item, cbor2.CBORTag):
        if item.tag != TAG_COSE_SIGN1 or tagged is False:
            raise CBORError(Reason.CBOR_WRONG_TAG, "not a COSE_Sign1 tag")
        item = item.value
    elif tagged:
        raise CBORError(Reason.CBOR_WRONG_TAG, "COSE_Sign1 tag 18 required")
    protected_bytes, protected, unprotected, payload, signature = _parse_four(item, "COSE_Sign1")
    return CoseSign1(protected_bytes, protected, unprotected, payload, signature)


def _parse_four(item: Any, what: str) -> tuple[bytes, dict[Any, Any], dict[Any, Any], Any, bytes]:
    if not isinstance(item, list) or len(item) != 4:
        raise CBORError(Reason.CBOR_WRONG_TYPE, f"{what} is not a four-element array")
    protected_bytes, unprotected, payload, tag = item
    if not isinstance(protected_bytes, bytes) or not isinstance(unprotected, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, f"{what} headers")
    if payload is not None and not isinstance(payload, bytes):
        raise CBORError(Reason.CBOR_WRONG_TYPE, f"{what} payload")
    if not isinstance(tag, bytes):
        raise CBORError(Reason.CBOR_WRONG_TYPE, f"{what} signature")
    protected = decode(protected_bytes) if protected_bytes else {}
    if not isinstance(protected, dict):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "protected header is not a map")
    # RFC 9052 §3: a label must not appear in both buckets.
    if set(protected) & set(unprotected):
        raise CBORError(Reason.CBOR_DUPLICATE_KEY, "header in both buckets")
    return protected_bytes, protected, unprotected, payload, tag


def parse_mac0(item: Any) -> tuple[bytes, dict[Any, Any], bytes]:
    """(protected bytes, protected headers, tag) of a COSE_Mac0 with a detached payload."""
    protected_bytes, protected, _, payload, tag = _parse_four(item, "COSE_Mac0")
    if payload is not None:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "deviceMac payload must be detached")
    return protected_bytes, protected, tag


def verify_mac0(
    protected_bytes: bytes, protected: Mapping[Any, Any], tag: bytes, *, key: bytes, payload: bytes
) -> None:
    """HMAC 256/256 over ``["MAC0", protected, b"", payload]``; constant-time comparison."""
    if protected.get(HEADER_ALG) != ALG_HMAC256:
        raise VerificationFailure(Reason.UNSUPPORTED_ALGORITHM)
    expected = hmac.new(key, encode(["MAC0", protected_bytes, b"", payload]), hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), tag):
        raise VerificationFailure(Reason.INVALID_DEVICE_SIGNATURE, "deviceMac")


def cose_key(key: ec.EllipticCurvePublicKey) -> dict[int, Any]:
    """The COSE_Key (EC2) of a P-256/P-384 public key."""
    crv = _CURVE_IDS.get(key.curve.name)
    if crv is None:
        raise ValueError("only P-256 and P-384 keys")
    size = (key.curve.key_size + 7) // 8
    numbers = key.public_numbers()
    return {1: 2, -1: crv, -2: numbers.x.to_bytes(size, "big"), -3: numbers.y.to_bytes(size, "big")}


def public_key_from_cose(value: Any) -> ec.EllipticCurvePublicKey:
    """A COSE_Key (EC2, P-256/P-384, uncompressed) as a public key on its curve, strictly."""
    if not isinstance(value, dict) or value.get(1) != 2:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "device key is not an EC2 COSE_Key")
    crv = value.get(-1)
    curve_type = _COSE_CURVES.get(crv) if type(crv) is int else None
    x, y = value.get(-2), value.get(-3)
    if curve_type is None or not isinstance(x, bytes) or not isinstance(y, bytes):
        raise VerificationFailure(Reason.MDOC_MALFORMED, "device key curve or coordinates")
    curve = curve_type()
    size = (curve.key_size + 7) // 8
    # RFC 9053 wants leading zero bytes kept, but some wallets (the EUDI reference one among
    # them) drop them: a short coordinate is padded, a long one refused.
    if not 0 < len(x) <= size or not 0 < len(y) <= size or -4 in value:  # -4: private scalar
        raise VerificationFailure(Reason.MDOC_MALFORMED, "device key coordinates")
    point = b"\x04" + x.rjust(size, b"\x00") + y.rjust(size, b"\x00")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "device key is not on its curve") from None
