"""Status List Tokens (draft-ietf-oauth-status-list §5): signing Thiqa's, reading others'.

A Status List Token is a JWT of ``typ: statuslist+jwt`` whose ``sub`` is the URI credentials
point to, carrying ``status_list: {bits, lst}``. Reading one checks, in order: the typ, the
issuer's key (chosen by the caller, never by the token), the signature, ``sub`` against the
URI that was fetched, the time claims, and the list itself. Any failure raises
:class:`StatusListError`: a verifier that cannot read a list answers "status unavailable".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509

from service.core import jws
from service.core.keys import InvalidSignatureError, SigningKey, VerificationKey
from service.core.reasons import VerificationFailure
from service.core.status_list import ALLOWED_BITS, StatusListError, decode_list, encode_list
from service.core.time_claims import TimeClaimFailure, TimeProblem, time_claim_failures
from service.core.x509 import parse_x5c, validate_chain

__all__ = ["STATUS_LIST_TYP", "StatusListToken", "read_status_list", "sign_status_list"]

STATUS_LIST_TYP: Final = "statuslist+jwt"


@dataclass(frozen=True, slots=True)
class StatusListToken:
    sub: str
    iat: int
    exp: int | None
    ttl: int | None
    bits: int
    data: bytes

    def fresh_for(self, now: int, *, max_seconds: int) -> int:
        """How long this list may be cached: never past ``exp`` or ``ttl``, nor the cap."""
        limits = [max_seconds]
        if self.ttl is not None:
            limits.append(self.ttl)
        if self.exp is not None:
            limits.append(self.exp - now)
        return max(0, min(limits))


def status_list_claims(
    data: bytes, *, uri: str, issuer: str, now: int, ttl: int, lifetime: int, bits: int = 2
) -> dict[str, Any]:
    return {
        "sub": uri,
        "iss": issuer,
        "iat": now,
        "exp": now + lifetime,
        "ttl": ttl,
        "status_list": {"bits": bits, "lst": encode_list(data)},
    }


def sign_status_list(claims: Mapping[str, Any], key: SigningKey) -> str:
    return jws.encode(claims, key, typ=STATUS_LIST_TYP)


#: Why a list's time claims fail it, the first failure found.
_TIME_MESSAGES: Final = {
    TimeClaimFailure("iat", TimeProblem.MALFORMED): "status list iat missing or in the future",
    TimeClaimFailure("iat", TimeProblem.MISSING): "status list iat missing or in the future",
    TimeClaimFailure("iat", TimeProblem.NOT_YET_VALID): "status list iat missing or in the future",
    TimeClaimFailure("nbf", TimeProblem.MALFORMED): "status list nbf is not a NumericDate",
    TimeClaimFailure("nbf", TimeProblem.NOT_YET_VALID): "status list not valid yet",
    TimeClaimFailure("exp", TimeProblem.MALFORMED): "status list exp is not a NumericDate",
    TimeClaimFailure("exp", TimeProblem.EXPIRED): "status list expired",
}


def read_status_list(
    token: str,
    *,
    keys: Mapping[str, VerificationKey],
    uri: str,
    now: int,
    clock_skew: int = 60,
    max_bytes: int = 16 * 1024 * 1024,
    anchors: Sequence[x509.Certificate] = (),
    max_age: int | None = None,
) -> StatusListToken:
    """Verify a Status List Token: by its ``x5c`` chain when the issuer has X.509
    ``anchors`` (HAIP 1.0: status lists are signed like credentials), else by ``kid``.
    ``max_age``: a token without ``exp`` must have been issued at most this many seconds
    ago (a list with neither could be replayed forever)."""
    try:
        parsed = jws.parse(token, typ=frozenset({STATUS_LIST_TYP}))
    except VerificationFailure as exc:
        raise StatusListError(f"not a status list token: {exc.reason.value}") from exc
    key: VerificationKey | None
    if "x5c" in parsed.header and anchors:
        try:
            key = validate_chain(
                parse_x5c(parsed.header["x5c"]), anchors=anchors, now=now
            ).verification_key()
        except VerificationFailure as exc:
            raise StatusListError(f"status list certificate: {exc.reason.value}") from exc
    else:
        key = keys.get(parsed.kid) if parsed.kid is not None else None
    if key is None or key.alg != parsed.alg:
        raise StatusListError("status list signed by an unknown key")
    try:
        key.verify(parsed.signature, parsed.signing_input)
    except InvalidSignatureError:
        raise StatusListError("status list signature does not verify") from None
    claims = parsed.payload
    if claims.get("sub") != uri:
        raise StatusListError("status list sub is not the URI it was fetched from")
    times = time_claim_failures(claims, now=now, leeway=clock_skew, required=("iat",))
    if times:
        raise StatusListError(_TIME_MESSAGES[times[0]])
    iat, exp, ttl = claims["iat"], claims.get("exp"), claims.get("ttl")
    if exp is None and max_age is not None and iat < now - max_age - clock_skew:
        raise StatusListError("status list has no exp and is too old")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
        raise StatusListError("status list ttl is not a positive integer")
    status_list = claims.get("status_list")
    if not isinstance(status_list, dict):
        raise StatusListError("status_list missing")
    bits, lst = status_list.get("bits"), status_list.get("lst")
    # type(): 2.0 == 2 and True == 1 would pass ``in ALLOWED_BITS``, then break the bit
    # arithmetic of the lookup.
    if type(bits) is not int or bits not in ALLOWED_BITS or not isinstance(lst, str):
        raise StatusListError("status_list needs bits 1, 2, 4 or 8 and lst")
    data = decode_list(lst, max_bytes=max_bytes)
    return StatusListToken(
        sub=uri,
        iat=int(iat),
        exp=int(exp) if exp is not None else None,
        ttl=ttl,
        bits=bits,
        data=data,
    )
