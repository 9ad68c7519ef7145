"""Issuing SD-JWT VC credentials: what is signed in the clear, what is disclosable."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.core import credential, holder, jws
from service.core.claims import RESERVED_CLAIMS, ClaimsError, normalise_claims
from service.core.credential import (
    CREDENTIAL_TYP,
    KB_TYP,
    LEGACY_CREDENTIAL_TYP,
    NEVER_DISCLOSABLE,
    StatusReference,
)
from service.core.keys import generate_signing_key
from service.core.sdjwt import digest, disclose, mark_all, split
from service.core.status_list import StatusValue
from service.core.verify import Expectations, Policy, conclude

from .helpers import (
    AUDIENCE,
    CLAIMS,
    HOLDER_KEY,
    ISSUER,
    ISSUER_KEY,
    NONCE,
    NOW,
    STATUS,
    STATUS_URI,
    VCT,
    bound_expectations,
    issue,
    present_bound,
    run,
)

ENVELOPE = {"iss", "iat", "exp", "vct", "cnf", "status", "_sd_alg", "_sd"}


def issuer_jwt(cred: str) -> jws.Jws:
    return jws.parse(split(cred).issuer_jwt, typ=frozenset({CREDENTIAL_TYP}))


def test_constants() -> None:
    assert CREDENTIAL_TYP == "dc+sd-jwt"
    assert LEGACY_CREDENTIAL_TYP == "vc+sd-jwt"
    assert KB_TYP == "kb+jwt"
    assert (
        frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})
        == NEVER_DISCLOSABLE
    )


def test_status_reference_claim_is_a_token_status_list_reference() -> None:
    assert StatusReference(uri="https://s/1", idx=42).claim() == {
        "status_list": {"idx": 42, "uri": "https://s/1"}
    }


def test_issued_credential_is_issuer_jwt_then_disclosures_each_ending_in_tilde() -> None:
    cred = issue()
    assert cred.endswith("~")
    parts = split(cred)
    assert parts.kb_jwt is None
    assert cred == parts.issuer_jwt + "~" + "".join(d + "~" for d in parts.disclosures)


def test_header_names_the_credential_type_the_algorithm_and_the_key() -> None:
    token = issuer_jwt(issue())
    assert dict(token.header) == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": ISSUER_KEY.kid}
    ISSUER_KEY.verification_key().verify(token.signature, token.signing_input)


def test_envelope_claims_are_signed_in_the_clear() -> None:
    payload = issuer_jwt(issue(issued_at=NOW - 5, expires_at=NOW + 10)).payload
    assert payload["iss"] == ISSUER
    assert payload["iat"] == NOW - 5
    assert payload["exp"] == NOW + 10
    assert payload["vct"] == VCT
    assert payload["status"] == {"status_list": {"idx": STATUS.idx, "uri": STATUS_URI}}
    assert payload["_sd_alg"] == "sha-256"
    assert payload["cnf"] == {"jwk": HOLDER_KEY.verification_key().public_jwk()}


def test_every_personal_claim_is_disclosable_and_none_is_in_the_clear() -> None:
    cred = issue()
    token = issuer_jwt(cred)
    assert set(token.payload) == ENVELOPE
    text = token.signing_input.decode()
    assert "Amina" not in text
    assert "AB123456" not in text
    parts = split(cred)
    # Seven top-level claims, two nested address members and two nationalities.
    assert len(parts.disclosures) == len(CLAIMS) + 2 + 2
    assert disclose(token.payload, parts.disclosures).claims == {
        **{k: v for k, v in token.payload.items() if k not in ("_sd", "_sd_alg")},
        **CLAIMS,
    }


def test_top_level_sd_array_has_decoys() -> None:
    cred = issue()
    token = issuer_jwt(cred)
    top_level = [d for d in split(cred).disclosures if digest(d) in token.payload["_sd"]]
    assert len(top_level) == len(CLAIMS)
    assert len(token.payload["_sd"]) > len(CLAIMS)  # 1 to 3 decoys
    assert token.payload["_sd"] == sorted(token.payload["_sd"])


def test_credential_without_holder_key_has_no_cnf() -> None:
    payload = issuer_jwt(issue(holder_key=None)).payload
    assert "cnf" not in payload


def test_two_issuances_of_the_same_claims_share_no_disclosure() -> None:
    first = set(split(issue()).disclosures)
    second = set(split(issue()).disclosures)
    assert not first & second


@pytest.mark.parametrize("expires_at", [NOW, NOW - 1])
def test_refuses_a_credential_that_expires_when_or_before_it_is_issued(expires_at: int) -> None:
    with pytest.raises(ValueError, match="expire"):
        issue(issued_at=NOW, expires_at=expires_at)


def test_structure_chooses_what_stays_in_the_clear() -> None:
    def keep_nationalities_clear(claims: Any) -> Any:
        return {**mark_all(claims), "nationalities": claims["nationalities"]}

    cred = credential.issue(
        CLAIMS,
        issuer=ISSUER,
        vct=VCT,
        key=ISSUER_KEY,
        status=STATUS,
        issued_at=NOW,
        expires_at=NOW + 60,
        structure=keep_nationalities_clear,
    )
    token = issuer_jwt(cred)
    assert token.payload["nationalities"] == ["MA", "FR"]
    assert len(split(cred).disclosures) == len(CLAIMS) - 1 + 2


@pytest.mark.parametrize("alg", ["ES384", "EdDSA"])
def test_issues_with_other_issuer_algorithms(alg: str) -> None:
    key = generate_signing_key(alg)
    token = issuer_jwt(issue(key=key))
    assert token.alg == alg
    key.verification_key().verify(token.signature, token.signing_input)


def test_every_disclosure_is_referenced_exactly_once() -> None:
    cred = issue()
    parts = split(cred)
    resolved = disclose(issuer_jwt(cred).payload, parts.disclosures)
    assert set(resolved.paths) == {digest(d) for d in parts.disclosures}
    assert len(set(resolved.paths.values())) == len(parts.disclosures)


def test_issued_credential_verifies_end_to_end() -> None:
    cred = issue()
    inspection = run(present_bound(cred, list(CLAIMS)), expect=bound_expectations())
    assert inspection.failures == ()
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.valid
    assert verdict.claims == CLAIMS
    assert verdict.key_bound
    assert verdict.issuer == ISSUER
    assert verdict.vct == VCT
    assert verdict.expires_at == NOW + 3600


# --- property: whatever valid claims go in come out ----------------------------------------

_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in RESERVED_CLAIMS
)
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAME, inner, max_size=3),
    max_leaves=6,
)
_CLAIMS = st.dictionaries(_NAME, _VALUE, min_size=1, max_size=5)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(_CLAIMS)
def test_any_valid_claims_verify_to_exactly_themselves(raw: dict[str, Any]) -> None:
    try:
        claims = normalise_claims(raw)
    except ClaimsError:
        claims = None  # deeper than the limits allow; normalise_claims has its own tests
    assume(claims is not None)
    assert claims is not None
    cred = issue(claims)
    presentation = holder.present(
        cred, list(claims), holder_key=HOLDER_KEY, nonce="n", audience="a", now=NOW
    )
    inspection = run(
        presentation,
        policy=Policy(max_size=1 << 20),
        expect=Expectations(nonce="n", audience="a"),
    )
    assert inspection.failures == ()
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.valid
    assert verdict.claims == claims


# --- peer: the SD-JWT reference implementation reads what Thiqa issues ----------------------


def test_reference_library_verifies_a_thiqa_presentation() -> None:
    # sd-jwt (openwallet-foundation-labs/sd-jwt-python) as an independent verifier: Thiqa's
    # digests, disclosures, decoys and KB-JWT are standard RFC 9901.
    from jwcrypto.jwk import JWK
    from sd_jwt.verifier import SDJWTVerifier

    presentation = present_bound(issue(), ["given_name", ("address", "locality")])

    def issuer_key(issuer: str, header: dict[str, Any]) -> JWK:
        assert issuer == ISSUER
        assert header["kid"] == ISSUER_KEY.kid
        return JWK(**ISSUER_KEY.verification_key().public_jwk())

    verifier = SDJWTVerifier(presentation, issuer_key, expected_aud=AUDIENCE, expected_nonce=NONCE)
    payload = verifier.get_verified_payload()
    assert {k: v for k, v in payload.items() if k not in ENVELOPE} == {
        "given_name": "Amina",
        "address": {"locality": "Rabat"},
    }
    assert payload["status"] == STATUS.claim()
