"""Status List Tokens in CWT form (draft-ietf-oauth-status-list §5.2): the mdoc world's list.

The same list as the JWT form, as a COSE_Sign1 (tag 18) whose protected header says
``typ`` (16) ``application/statuslist+cwt`` and whose payload is a CWT claims map: 2 ``sub``
(the URI credentials point to), 6 ``iat``, 4 ``exp``, 65534 ``ttl`` and 65533
``status_list = {bits, lst}``, ``lst`` being the zlib bytes themselves (no base64url).

Reading one checks, in order: strict CBOR, the tag and ``typ``, the signature with a key the
caller chose (never one the token names), ``sub`` against the URI fetched, the times, the list.
Any failure raises :class:`StatusListError`, which a verifier reads as "status unavailable",
never as "valid" and never as "revoked".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, Final

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.mdoc import cose
from service.core.mdoc.cbor import TAG_COSE_SIGN1, CBORLimits, decode, encode
from service.core.reasons import VerificationFailure
from service.core.status_list import ALLOWED_BITS, StatusListError, inflate_list
from service.core.status_token import StatusListToken

__all__ = ["STATUS_LIST_CWT_MEDIA_TYPE", "read_status_list_cwt", "sign_status_list_cwt"]

STATUS_LIST_CWT_MEDIA_TYPE: Final = "application/statuslist+cwt"
CLAIM_SUB: Final = 2
CLAIM_EXP: Final = 4
CLAIM_IAT: Final = 6
CLAIM_TTL: Final = 65534
CLAIM_STATUS_LIST: Final = 65533
_TAGS: Final = frozenset({TAG_COSE_SIGN1})
_LIMITS: Final = CBORLimits(max_bytes=4 * 1024 * 1024, max_depth=6, max_items=64)


def sign_status_list_cwt(
    data: bytes,
    *,
    uri: str,
    bits: int,
    now: int,
    ttl: int,
    lifetime: int,
    key: ec.EllipticCurvePrivateKey,
    x5chain: Sequence[x509.Certificate],
) -> bytes:
    """The list ``data`` as a signed ``application/statuslist+cwt`` token (tagged bytes)."""
    claims = {
        CLAIM_SUB: uri,
        CLAIM_IAT: now,
        CLAIM_EXP: now + lifetime,
        CLAIM_TTL: ttl,
        CLAIM_STATUS_LIST: {"bits": bits, "lst": zlib.compress(data, level=9)},
    }
    chain = [c.public_bytes(serialization.Encoding.DER) for c in x5chain]
    signed = cose.sign1(
        encode(claims),
        key,
        protected={cose.HEADER_TYP: STATUS_LIST_CWT_MEDIA_TYPE},
        unprotected={cose.HEADER_X5CHAIN: chain[0] if len(chain) == 1 else chain},
    )
    return encode(cbor2.CBORTag(TAG_COSE_SIGN1, signed.array()))


def read_status_list_cwt(
    token: bytes,
    *,
    key: ec.EllipticCurvePublicKey,
    uri: str,
    now: int,
    clock_skew: int = 60,
    max_bytes: int = 16 * 1024 * 1024,
) -> StatusListToken:
    """A verified CWT status list, or :class:`StatusListError` saying why not."""
    try:
        signed = cose.parse_sign1(decode(token, limits=_LIMITS, tags=_TAGS), tagged=True)
        if signed.protected.get(cose.HEADER_TYP) != STATUS_LIST_CWT_MEDIA_TYPE:
            raise StatusListError("not a statuslist+cwt token")
        if signed.payload is None:
            raise StatusListError("status list payload detached")
        signed.verify(key)
        claims = decode(signed.payload, limits=_LIMITS, tags=frozenset())
    except VerificationFailure as exc:
        raise StatusListError(f"status list token refused: {exc.reason.value}") from exc
    if not isinstance(claims, dict):
        raise StatusListError("CWT claims are not a map")
    if claims.get(CLAIM_SUB) != uri:
        raise StatusListError("status list sub is not the URI it was fetched from")
    iat, exp, ttl = claims.get(CLAIM_IAT), claims.get(CLAIM_EXP), claims.get(CLAIM_TTL)
    if not isinstance(iat, int) or not _uint(iat) or iat > now + clock_skew:
        raise StatusListError("status list iat missing or in the future")
    if exp is not None and (not _uint(exp) or exp <= now - clock_skew):
        raise StatusListError("status list expired")
    if ttl is not None and (not _uint(ttl) or ttl == 0):
        raise StatusListError("status list ttl is not a positive integer")
    status_list: Any = claims.get(CLAIM_STATUS_LIST)
    if not isinstance(status_list, dict):
        raise StatusListError("status_list missing")
    bits, lst = status_list.get("bits"), status_list.get("lst")
    if type(bits) is not int or bits not in ALLOWED_BITS or not isinstance(lst, bytes):
        raise StatusListError("status_list needs bits 1, 2, 4 or 8 and lst bytes")
    return StatusListToken(
        sub=uri,
        iat=iat,
        exp=exp,
        ttl=ttl,
        bits=bits,
        data=inflate_list(lst, max_bytes=max_bytes),
    )


def _uint(value: Any) -> bool:
    return type(value) is int and value >= 0
