"""Builders shared by the core tests: keys, signed payloads, credentials and presentations.

Nothing here mocks cryptography: every token is signed with a real key and verified with the
real code. The clock is a constant passed in as ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from service.core import credential, holder, jws
from service.core.encoding import b64url_encode, json_dumps
from service.core.keys import (
    InvalidSignatureError,
    SigningKey,
    VerificationKey,
    generate_signing_key,
)
from service.core.reasons import Reason
from service.core.sdjwt import Disclosure, digest
from service.core.status_list import StatusValue
from service.core.verify import (
    Expectations,
    Inspection,
    Policy,
    TrustedIssuer,
    Verdict,
    conclude,
    inspect,
)


def signature_holds(key: VerificationKey, signature: bytes, signing_input: bytes) -> bool:
    """``key.verify`` as a yes or no, for tables of signatures: True when it returns, False
    when it raises :class:`InvalidSignatureError` (any other exception propagates)."""
    try:
        key.verify(signature, signing_input)
    except InvalidSignatureError:
        return False
    return True


VECTORS = Path(__file__).resolve().parent.parent / "vectors"

NOW = 1_700_000_000
ISSUER = "https://issuer.thiqa.example"
VCT = "https://thiqa.example/credentials/national-id"
STATUS_URI = "https://issuer.thiqa.example/status/1"
STATUS = credential.StatusReference(uri=STATUS_URI, idx=7)
NONCE = "n-0S6_WzA2Mj"
AUDIENCE = "https://verifier.example"

# Generated once per test session: fast, and real keys.
ISSUER_KEY: SigningKey = generate_signing_key("ES256")
HOLDER_KEY: SigningKey = generate_signing_key("ES256")
OTHER_KEY: SigningKey = generate_signing_key("ES256")

CLAIMS: dict[str, Any] = {
    "given_name": "Amina",
    "family_name": "Benali",
    "given_name#ar": "أمينة",
    "birthdate": "1990-04-12",
    "national_id": "AB123456",
    "address": {"locality": "Rabat", "country": "MA"},
    "nationalities": ["MA", "FR"],
}


def trusted(
    *keys: SigningKey, issuer: str = ISSUER, types: frozenset[str] = frozenset({VCT})
) -> dict[str, TrustedIssuer]:
    keys = keys or (ISSUER_KEY,)
    return {
        issuer: TrustedIssuer(
            identifier=issuer,
            keys={k.kid: k.verification_key() for k in keys},
            types=types,
        )
    }


def b64json(value: Any) -> str:
    return b64url_encode(json_dumps(value).encode("utf-8"))


def sign_raw(header: Mapping[str, Any], payload: Mapping[str, Any] | str, key: SigningKey) -> str:
    """A compact JWS with exactly ``header`` (no defaults added) signed by ``key``.

    ``payload`` may be a string already base64url-encoded, to sign unusual JSON text.
    """
    payload_b64 = payload if isinstance(payload, str) else b64json(payload)
    signing_input = f"{b64json(header)}.{payload_b64}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"


def envelope(**overrides: Any) -> dict[str, Any]:
    """The clear claims of a valid credential, without any personal claim."""
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "iat": NOW - 100,
        "exp": NOW + 3600,
        "vct": VCT,
        "status": STATUS.claim(),
        "_sd_alg": "sha-256",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def sd_jwt(
    payload: Mapping[str, Any],
    disclosures: Sequence[Disclosure | str] = (),
    *,
    key: SigningKey = ISSUER_KEY,
    typ: str = credential.CREDENTIAL_TYP,
) -> str:
    """``<issuer-jwt>~<d1>~...~`` for a hand-built payload."""
    token = jws.encode(payload, key, typ=typ)
    encoded = [d if isinstance(d, str) else d.encoded for d in disclosures]
    return token + "~" + "".join(e + "~" for e in encoded)


def ref(disclosure: Disclosure) -> str:
    return digest(disclosure.encoded)


def issue(
    claims: Mapping[str, Any] = CLAIMS,
    *,
    key: SigningKey = ISSUER_KEY,
    holder_key: SigningKey | None = HOLDER_KEY,
    issued_at: int = NOW - 100,
    expires_at: int = NOW + 3600,
    vct: str = VCT,
    issuer: str = ISSUER,
) -> str:
    return credential.issue(
        claims,
        issuer=issuer,
        vct=vct,
        key=key,
        status=STATUS,
        issued_at=issued_at,
        expires_at=expires_at,
        holder_jwk=holder_key.verification_key().public_jwk() if holder_key else None,
    )


def present_bound(
    cred: str,
    claims: Sequence[Any] = ("given_name",),
    *,
    key: SigningKey = HOLDER_KEY,
    nonce: str = NONCE,
    audience: str = AUDIENCE,
    now: int = NOW,
) -> str:
    return holder.present(cred, claims, holder_key=key, nonce=nonce, audience=audience, now=now)


def kb_jwt(
    body: str,
    *,
    key: SigningKey = HOLDER_KEY,
    header: Mapping[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A KB-JWT over ``body`` (``<jwt>~<d>~...~``) with any claim overridable or removable."""
    payload: dict[str, Any] = {
        "iat": NOW,
        "aud": AUDIENCE,
        "nonce": NONCE,
        "sd_hash": digest(body),
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return sign_raw(header or {"alg": key.alg, "typ": "kb+jwt"}, payload, key)


def run(
    presentation: str,
    *,
    trust: Mapping[str, TrustedIssuer] | None = None,
    policy: Policy | None = None,
    expect: Expectations | None = None,
    now: int = NOW,
) -> Inspection:
    return inspect(
        presentation,
        trusted=trust if trust is not None else trusted(),
        policy=policy or Policy(),
        expect=expect or Expectations(),
        now=now,
    )


def bound_expectations() -> Expectations:
    return Expectations(nonce=NONCE, audience=AUDIENCE)


def reasons(inspection: Inspection) -> set[Reason]:
    return {f.reason for f in inspection.failures}


def verdict(inspection: Inspection, status: StatusValue | None = StatusValue.VALID) -> Verdict:
    return conclude(inspection, status)


def assert_rejected(inspection: Inspection, *expected: Reason) -> None:
    """Exactly ``expected`` failed, and no status, not even "valid", rescues the verdict."""
    assert reasons(inspection) == set(expected), inspection.failures
    assert not conclude(inspection, StatusValue.VALID).valid


def decode_segment(segment: str) -> Any:
    from service.core.encoding import b64url_decode

    return json.loads(b64url_decode(segment))
