"""The verification pipeline: from a presented SD-JWT VC to a verdict with reasons.

Checks run in a fixed order. Until the issuer's signature holds, nothing in the token is
trusted, so the first failure ends the run: size and shape, header (``typ``, algorithm,
``kid``), issuer and key, signature. After the signature every remaining check runs and each
failure is recorded: disclosures, time claims (read after disclosures are applied), holder key
binding, and finally status, which needs the store and is applied by :func:`conclude`.

A verdict is valid exactly when it lists no failure; there is no boolean to forget to check.
The clock is an argument: nothing here reads the time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.core import jws
from service.core.credential import (
    CREDENTIAL_TYP,
    KB_TYP,
    LEGACY_CREDENTIAL_TYP,
    NEVER_DISCLOSABLE,
    StatusReference,
)
from service.core.keys import (
    InvalidSignatureError,
    JWKError,
    VerificationKey,
    jwk_thumbprint,
    parse_public_jwk,
)
from service.core.memo import Memo
from service.core.reasons import Failure, Reason, VerificationFailure
from service.core.sdjwt import DEFAULT_HASH, Presentation, Resolved, digest, disclose, split
from service.core.status_list import StatusValue
from service.core.time_claims import (
    TimeClaimFailure,
    TimeProblem,
    is_numeric_date,
    time_claim_failures,
)
from service.core.x509 import authority_key_identifier, parse_x5c, validate_chain

__all__ = [
    "ENVELOPE_CLAIMS",
    "Expectations",
    "Inspection",
    "Policy",
    "TrustedIssuer",
    "Verdict",
    "conclude",
    "inspect",
]

#: Claims describing the credential rather than its holder: never among a verdict's claims,
#: and never a claim a relying party may ask a wallet for (:mod:`service.core.openid4vp`).
ENVELOPE_CLAIMS: Final = frozenset(
    {"iss", "iat", "nbf", "exp", "vct", "vct#integrity", "cnf", "status", "_sd_alg"}
)


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer whose credentials this verifier accepts, for the types it may issue.

    ``status_hosts`` are the only hosts (``host`` or ``host:port``) its status lists may be
    fetched from; a status URI naming any other host is never fetched.
    """

    identifier: str
    keys: Mapping[str, VerificationKey]
    types: frozenset[str]
    status_hosts: frozenset[str] = frozenset()
    name: str | None = None
    #: Keys the issuer revoked as compromised: a credential naming one is refused as
    #: ``key_revoked``, whatever its signature says.
    revoked_kids: frozenset[str] = frozenset()
    #: Its status hosts may resolve to private, loopback or link-local addresses (an issuer
    #: on the operator's own network). Off: such an address is refused, whatever DNS says.
    private_status_hosts: bool = False
    #: X.509 trust anchors per credential type: a credential of that type whose header
    #: carries ``x5c`` must chain to one of them (HAIP 1.0). An issuer without anchors
    #: never has its credentials' ``x5c`` read at all.
    anchors: Mapping[str, tuple[x509.Certificate, ...]] = field(default_factory=dict)

    def all_anchors(self) -> tuple[x509.Certificate, ...]:
        seen: dict[bytes, x509.Certificate] = {}
        for roots in self.anchors.values():
            for root in roots:
                seen.setdefault(root.fingerprint(_SHA256), root)
        return tuple(seen.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    max_size: int = 16 * 1024
    accept_legacy_typ: bool = True
    clock_skew: int = 60
    kb_max_age: int = 300
    require_exp: bool = True
    #: A credential bound to a holder key is only valid with proof of that key, even when
    #: the verifier asked for no nonce (without it the credential is a bearer token).
    require_key_binding: bool = False

    @property
    def credential_typs(self) -> frozenset[str]:
        return _TYPS_WITH_LEGACY if self.accept_legacy_typ else _TYPS


_TYPS: Final = frozenset({CREDENTIAL_TYP})
_SHA256: Final = hashes.SHA256()
_TYPS_WITH_LEGACY: Final = frozenset({CREDENTIAL_TYP, LEGACY_CREDENTIAL_TYP})


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectations:
    """What the verifying app asked the holder to bind the presentation to."""

    nonce: str | None = None
    audience: str | None = None

    @property
    def binding_required(self) -> bool:
        return self.nonce is not None or self.audience is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Inspection:
    """Everything decided without the store; :func:`conclude` adds the status."""

    failures: tuple[Failure, ...]
    issuer: str | None = None
    vct: str | None = None
    claims: dict[str, Any] | None = None
    expires_at: int | None = None
    status_ref: StatusReference | None = None
    key_bound: bool = False
    #: ``aki`` of the X.509 anchor the issuer's ``x5c`` chained to, if it was verified so.
    anchor_aki: str | None = None

    @property
    def signature_verified(self) -> bool:
        return self.issuer is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    failures: tuple[Failure, ...]
    credential_status: StatusValue | None = None
    issuer: str | None = None
    vct: str | None = None
    claims: dict[str, Any] | None = None
    expires_at: int | None = None
    key_bound: bool = False
    anchor_aki: str | None = None
    reasons: frozenset[Reason] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", frozenset(f.reason for f in self.failures))

    @property
    def valid(self) -> bool:
        return not self.failures


def inspect(
    presentation: str,
    *,
    trusted: Mapping[str, TrustedIssuer],
    policy: Policy,
    expect: Expectations,
    now: int,
    memo: Memo | None = None,
) -> Inspection:
    """Run every check that needs no store. Never raises for bad input. With ``memo``,
    results that depend only on exact bytes are remembered (:mod:`service.core.memo`)."""
    try:
        return _inspect(
            presentation, trusted=trusted, policy=policy, expect=expect, now=now, memo=memo
        )
    except VerificationFailure as failure:
        return Inspection(failures=(failure.failure,))


def conclude(
    inspection: Inspection,
    status: StatusValue | None,
    *,
    unavailable: bool = False,
    status_failure: Failure | None = None,
) -> Verdict:
    """Fold the credential's status into the verdict.

    ``status`` is None when no lookup was made; ``unavailable`` when it was attempted and the
    store could not answer, which is never read as "valid"; ``status_failure`` when the
    reference itself could not be resolved (an unknown list, an index out of range).
    """
    failures = list(inspection.failures)
    if status is not None:
        status = StatusValue(status)  # a raw int must not slip past the identity checks
    if status_failure is not None:
        failures.append(status_failure)
    elif unavailable:
        failures.append(Failure.of(Reason.STATUS_UNAVAILABLE))
    elif status is StatusValue.INVALID:
        failures.append(Failure.of(Reason.REVOKED))
    elif status is StatusValue.SUSPENDED:
        failures.append(Failure.of(Reason.SUSPENDED))
    elif status is StatusValue.APPLICATION_SPECIFIC:
        failures.append(Failure.of(Reason.STATUS_UNAVAILABLE, "unknown status value"))
    elif status is None and inspection.signature_verified and not failures:
        # A verdict without a status lookup is never a "valid" one.
        failures.append(Failure.of(Reason.STATUS_UNAVAILABLE))
    valid = not failures
    return Verdict(
        failures=tuple(failures),
        credential_status=status,
        issuer=inspection.issuer,
        vct=inspection.vct,
        claims=inspection.claims if valid else None,
        expires_at=inspection.expires_at,
        key_bound=inspection.key_bound,
        anchor_aki=inspection.anchor_aki,
    )


def _inspect(
    presentation: str,
    *,
    trusted: Mapping[str, TrustedIssuer],
    policy: Policy,
    expect: Expectations,
    now: int,
    memo: Memo | None,
) -> Inspection:
    # 1. Size and shape.
    if len(presentation) > policy.max_size:
        raise VerificationFailure(Reason.TOO_LARGE)
    if not presentation.isascii():
        raise VerificationFailure(Reason.MALFORMED, "not ASCII")
    parts = split(presentation)

    # 2. Header: typ, algorithm allow-list, kid.
    def parsed() -> jws.Jws:
        return jws.parse(parts.issuer_jwt, typ=policy.credential_typs)

    token = (
        parsed()
        if memo is None
        else memo.remembered(memo.tokens, (parts.issuer_jwt, policy.credential_typs), parsed)
    )
    # 3. Issuer and key. ``iss`` is read before the signature only to choose whose keys to use.
    iss = token.payload.get("iss")
    if not isinstance(iss, str):
        raise VerificationFailure(Reason.MALFORMED, "iss missing")
    issuer = trusted.get(iss)
    if issuer is None:
        raise VerificationFailure(Reason.UNKNOWN_ISSUER)
    # Before the signature: a compromised key's signature proves nothing, valid or not.
    if token.kid is not None and token.kid in issuer.revoked_kids:
        raise VerificationFailure(Reason.KEY_REVOKED)
    anchor_aki: str | None = None
    key: VerificationKey | None
    if "x5c" in token.header and issuer.anchors:
        key, anchor_aki = _certified_key(token, issuer, iss=iss, now=now)
    else:
        # x5c from an issuer without anchors is never read: a chain proves nothing unless
        # it leads to a root the operator chose.
        key = issuer.keys.get(token.kid) if token.kid is not None else None
    if key is None:
        raise VerificationFailure(Reason.UNKNOWN_KEY)
    if key.alg != token.alg:
        raise VerificationFailure(Reason.UNSUPPORTED_ALGORITHM, "not allowed for this key")

    # 4. Signature.
    def signature_holds() -> bool:
        try:
            key.verify(token.signature, token.signing_input)
        except InvalidSignatureError:
            return False
        return True

    if memo is None:
        holds = signature_holds()
    else:
        holds = memo.signature_holds(
            key.fingerprint, token.signing_input, token.signature, signature_holds
        )
    if not holds:
        raise VerificationFailure(Reason.INVALID_SIGNATURE)

    # From here on the payload is the issuer's: collect every failure.
    payload = token.payload
    failures: list[Failure] = []
    vct = payload.get("vct")
    if not isinstance(vct, str) or not vct:
        failures.append(Failure.of(Reason.MALFORMED, "vct missing"))
        vct = None
    elif vct not in issuer.types:
        failures.append(Failure.of(Reason.UNTRUSTED_TYPE))

    def disclosed() -> Resolved:
        return disclose(payload, parts.disclosures, never_disclosable=NEVER_DISCLOSABLE, memo=memo)

    resolved: Resolved | None = None
    try:
        # Remembered only now that the issuer's signature holds over this exact payload.
        resolved = (
            disclosed()
            if memo is None
            else memo.remembered(
                memo.resolutions, (parts.issuer_jwt, tuple(parts.disclosures)), disclosed
            )
        )
    except VerificationFailure as failure:
        failures.append(failure.failure)

    # Times are read from the payload with its disclosures applied (RFC 9901 §7.1): ``nbf``
    # and ``exp`` may never be disclosed, but SD-JWT VC lets ``iat`` be. When the disclosures
    # do not hold, the signed payload is all there is to read.
    processed = resolved.claims if resolved is not None else payload
    failures.extend(_check_times(processed, policy=policy, now=now))
    status_ref, status_failure = _status_reference(payload)
    if status_failure is not None:
        failures.append(status_failure)

    kb_failures = _check_key_binding(
        parts, payload, expect=expect, policy=policy, now=now, memo=memo
    )
    failures.extend(kb_failures)

    claims = None
    if resolved is not None:
        claims = {k: v for k, v in resolved.claims.items() if k not in ENVELOPE_CLAIMS}
    exp = payload.get("exp")
    return Inspection(
        failures=tuple(failures),
        issuer=iss,
        vct=vct,
        claims=claims,
        expires_at=int(exp) if is_numeric_date(exp) else None,
        status_ref=status_ref,
        key_bound=parts.kb_jwt is not None and not kb_failures,
        anchor_aki=anchor_aki,
    )


def _certified_key(
    token: jws.Jws, issuer: TrustedIssuer, *, iss: str, now: int
) -> tuple[VerificationKey, str]:
    """The leaf key of the token's ``x5c``, once the chain builds to an anchor of the
    credential's type and the leaf names ``iss``. ``vct`` is read before the signature only
    to choose the anchors, as ``iss`` chooses the issuer."""
    chain = parse_x5c(token.header["x5c"])
    vct = token.payload.get("vct")
    anchors = issuer.anchors.get(vct) if isinstance(vct, str) else None
    if not anchors:
        raise VerificationFailure(Reason.UNTRUSTED_CERTIFICATE, "no anchor for this type")
    validated = validate_chain(chain, anchors=anchors, now=now)
    leaf_key = validated.verification_key()
    # A key the issuer revoked stays revoked whatever certificate still names it.
    if jwk_thumbprint(leaf_key.public_jwk()) in issuer.revoked_kids:
        raise VerificationFailure(Reason.KEY_REVOKED)
    # SD-JWT VC: with x5c, iss must match the leaf (a SAN URI, or for an https issuer its
    # SAN DNS name).
    host = urlsplit(iss).hostname if iss.startswith("https://") else None
    if iss not in validated.san_uris and (host is None or host not in validated.san_dns):
        raise VerificationFailure(Reason.CERTIFICATE_MISMATCH)
    return leaf_key, authority_key_identifier(validated.anchor)


def _check_times(payload: Mapping[str, Any], *, policy: Policy, now: int) -> list[Failure]:
    failures: list[Failure] = []
    found = time_claim_failures(
        payload,
        now=now,
        leeway=policy.clock_skew,
        required=("exp",) if policy.require_exp else (),
    )
    for failure in found:
        if failure.problem is TimeProblem.MALFORMED:
            failures.append(Failure.of(Reason.MALFORMED, f"{failure.claim} is not a NumericDate"))
        elif failure.problem is TimeProblem.MISSING:
            failures.append(Failure.of(Reason.MALFORMED, f"{failure.claim} missing"))
        elif failure.problem is TimeProblem.EXPIRED:
            failures.append(Failure.of(Reason.EXPIRED))
    # A future nbf and a future iat are one finding: the credential is not valid yet.
    if any(f.problem is TimeProblem.NOT_YET_VALID for f in found):
        failures.append(Failure.of(Reason.NOT_YET_VALID))
    return failures


def _status_reference(
    payload: Mapping[str, Any],
) -> tuple[StatusReference | None, Failure | None]:
    if "status" not in payload:
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "no status")
    status = payload["status"]
    entry = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(entry, dict):
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "no status_list")
    idx, uri = entry.get("idx"), entry.get("uri")
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "idx is not an index")
    if not isinstance(uri, str) or not uri:
        return None, Failure.of(Reason.INVALID_STATUS_REFERENCE, "uri missing")
    return StatusReference(uri=uri, idx=idx), None


def _holder_key(jwk: Any, memo: Memo | None) -> VerificationKey:
    """The ``cnf.jwk`` parsed strictly; remembered by its exact members when they are all
    strings (anything else is parsed, and refused, every time)."""
    members = (
        tuple(sorted(jwk.items()))
        if memo is not None
        and isinstance(jwk, dict)
        and all(isinstance(v, str) for v in jwk.values())
        else None
    )
    if members is not None and memo is not None:
        known = memo.holder_keys.get(members)
        if isinstance(known, VerificationKey):
            return known
    key = parse_public_jwk(jwk, kid="cnf")  # no thumbprint needed here
    if members is not None and memo is not None:
        memo.holder_keys.put(members, key)
    return key


#: What a key-binding JWT's time failure says after ``invalid_key_binding``. A KB-JWT must be
#: fresh (``iat`` within ``kb_max_age``); an ``exp`` or ``nbf`` it carries binds it too.
_KB_TIME_DETAILS: Final = {
    TimeClaimFailure("iat", TimeProblem.MALFORMED): "iat",
    TimeClaimFailure("iat", TimeProblem.MISSING): "iat",
    TimeClaimFailure("iat", TimeProblem.NOT_YET_VALID): "iat outside the window",
    TimeClaimFailure("iat", TimeProblem.TOO_OLD): "iat outside the window",
    TimeClaimFailure("nbf", TimeProblem.MALFORMED): "nbf is not a NumericDate",
    TimeClaimFailure("nbf", TimeProblem.NOT_YET_VALID): "nbf in the future",
    TimeClaimFailure("exp", TimeProblem.MALFORMED): "exp is not a NumericDate",
    TimeClaimFailure("exp", TimeProblem.EXPIRED): "exp has passed",
}


def _utf8(text: str) -> bytes:
    # JSON can carry a lone surrogate (\ud800), which strict UTF-8 refuses to encode.
    return text.encode("utf-8", "surrogatepass")


def _check_key_binding(
    parts: Presentation,
    payload: Mapping[str, Any],
    *,
    expect: Expectations,
    policy: Policy,
    now: int,
    memo: Memo | None,
) -> list[Failure]:
    if parts.kb_jwt is None:
        if expect.binding_required or (policy.require_key_binding and "cnf" in payload):
            return [Failure.of(Reason.KEY_BINDING_REQUIRED)]
        return []
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if jwk is None:
        return [Failure.of(Reason.INVALID_KEY_BINDING, "credential has no holder key")]
    try:
        holder_key = _holder_key(jwk, memo)
        token = jws.parse(parts.kb_jwt, typ=frozenset({KB_TYP}), failure=Reason.INVALID_KEY_BINDING)
    except JWKError:
        return [Failure.of(Reason.INVALID_KEY_BINDING, "holder key is invalid")]
    except VerificationFailure as failure:
        # A wrong typ or algorithm in a KB-JWT is a bad key binding, whatever the step.
        return [Failure.of(Reason.INVALID_KEY_BINDING, failure.reason.value)]
    if token.alg != holder_key.alg:
        return [Failure.of(Reason.INVALID_KEY_BINDING, "signature")]
    try:
        holder_key.verify(token.signature, token.signing_input)
    except InvalidSignatureError:
        return [Failure.of(Reason.INVALID_KEY_BINDING, "signature")]
    claims = token.payload
    failures: list[Failure] = []
    for found in time_claim_failures(
        claims,
        now=now,
        leeway=policy.clock_skew,
        required=("iat",),
        max_age=policy.kb_max_age,
    ):
        failures.append(Failure.of(Reason.INVALID_KEY_BINDING, _KB_TIME_DETAILS[found]))
    hash_alg = payload.get("_sd_alg", DEFAULT_HASH)
    sd_hash = claims.get("sd_hash")
    try:
        expected_hash = digest(parts.hashed_part, hash_alg)
    except (KeyError, TypeError):
        expected_hash = None
    if (
        not isinstance(sd_hash, str)
        or expected_hash is None
        # As bytes: compare_digest raises TypeError on a str that is not ASCII.
        or not hmac.compare_digest(_utf8(sd_hash), _utf8(expected_hash))
    ):
        failures.append(Failure.of(Reason.INVALID_KEY_BINDING, "sd_hash"))
    nonce, aud = claims.get("nonce"), claims.get("aud")
    if not isinstance(nonce, str) or not isinstance(aud, str):
        failures.append(Failure.of(Reason.INVALID_KEY_BINDING, "nonce and aud required"))
        return failures
    if expect.nonce is not None and not hmac.compare_digest(_utf8(nonce), _utf8(expect.nonce)):
        failures.append(Failure.of(Reason.NONCE_MISMATCH))
    if expect.audience is not None and aud != expect.audience:
        failures.append(Failure.of(Reason.AUDIENCE_MISMATCH))
    return failures
