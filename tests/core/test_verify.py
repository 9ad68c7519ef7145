"""The verification pipeline: fixed order, exact reasons, exact clock boundaries.

Until the issuer's signature holds, the first failure ends the run and is the only reason;
after it, every failure is collected. Every negative test asserts the exact set of reasons
and that no status (not even "valid") makes the verdict valid.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core import holder
from service.core.credential import StatusReference
from service.core.encoding import b64url_decode, b64url_encode
from service.core.keys import generate_signing_key
from service.core.reasons import MESSAGES, Failure, Reason
from service.core.sdjwt import digest, make_disclosure, split
from service.core.status_list import StatusValue
from service.core.verify import (
    Expectations,
    Inspection,
    Policy,
    Verdict,
    conclude,
)

from .helpers import (
    AUDIENCE,
    CLAIMS,
    HOLDER_KEY,
    ISSUER,
    ISSUER_KEY,
    NONCE,
    NOW,
    OTHER_KEY,
    STATUS,
    VCT,
    assert_rejected,
    b64json,
    bound_expectations,
    envelope,
    issue,
    kb_jwt,
    present_bound,
    reasons,
    ref,
    run,
    sd_jwt,
    sign_raw,
    trusted,
)

SKEW = Policy().clock_skew
KB_MAX_AGE = Policy().kb_max_age
CRED = issue()


def issuer_header(**members: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": "ES256", "typ": "dc+sd-jwt", "kid": ISSUER_KEY.kid}
    base.update(members)
    return {k: v for k, v in base.items() if v is not None}


def body_of(presentation: str) -> str:
    return split(presentation).hashed_part


# --- the happy path --------------------------------------------------------------------------


def test_valid_bound_presentation_passes_every_check() -> None:
    inspection = run(present_bound(CRED, ["given_name", "address"]), expect=bound_expectations())
    assert inspection.failures == ()
    assert inspection.signature_verified
    assert inspection.issuer == ISSUER
    assert inspection.vct == VCT
    assert inspection.expires_at == NOW + 3600
    assert inspection.status_ref == STATUS
    assert inspection.key_bound
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.valid
    assert verdict.reasons == frozenset()
    assert verdict.credential_status is StatusValue.VALID


def test_returns_only_the_disclosed_claims_without_the_envelope() -> None:
    inspection = run(holder.present(CRED, ["given_name", ("address", "country")]))
    assert inspection.claims == {"given_name": "Amina", "address": {"country": "MA"}}


def test_vct_integrity_is_envelope_not_a_claim() -> None:
    """``vct#integrity`` describes the type, not the citizen: like ``vct`` it stays out of the
    verdict's claims (and a presentation request may not ask for it either)."""
    name = make_disclosure("Amina", name="given_name")
    payload = envelope(**{"vct#integrity": "sha256-abc", "_sd": [ref(name)]})
    inspection = run(sd_jwt(payload, [name]))
    assert inspection.failures == ()
    assert inspection.claims == {"given_name": "Amina"}


def test_unbound_presentation_is_valid_when_no_binding_is_expected() -> None:
    inspection = run(holder.present(CRED, ["given_name"]))
    assert inspection.failures == ()
    assert not inspection.key_bound
    assert conclude(inspection, StatusValue.VALID).valid


def test_key_binding_is_checked_even_when_not_asked_for() -> None:
    presentation = present_bound(CRED, nonce="any", audience="https://any.example")
    inspection = run(presentation)
    assert inspection.failures == ()
    assert inspection.key_bound


def test_accepts_any_trusted_key_of_the_issuer() -> None:
    old, new = generate_signing_key("ES256"), generate_signing_key("EdDSA")
    trust = trusted(old, new)
    for key in (old, new):
        assert run(holder.present(issue(key=key), ["given_name"]), trust=trust).failures == ()


# --- size and shape --------------------------------------------------------------------------


def test_size_limit_is_exact() -> None:
    presentation = holder.present(CRED, ["given_name"])
    assert run(presentation, policy=Policy(max_size=len(presentation))).failures == ()
    inspection = run(presentation, policy=Policy(max_size=len(presentation) - 1))
    assert_rejected(inspection, Reason.TOO_LARGE)
    assert not inspection.signature_verified


@pytest.mark.parametrize("text", ["", "no tilde", "a~b", "~", "jwt~~", "x.y.z~"])
def test_rejects_text_that_is_not_an_sd_jwt(text: str) -> None:
    assert_rejected(run(text), Reason.MALFORMED)


def test_rejects_bare_jwt_without_tilde() -> None:
    assert_rejected(run(split(CRED).issuer_jwt), Reason.MALFORMED)


def test_rejects_non_ascii_presentation() -> None:
    assert_rejected(run(holder.present(CRED, []) + "é"), Reason.MALFORMED)


# --- order of the checks before the signature -------------------------------------------------


def test_wrong_typ_is_reported_before_anything_about_the_issuer() -> None:
    token = sign_raw(issuer_header(typ="JWT"), envelope(iss="https://unknown.example"), OTHER_KEY)
    assert_rejected(run(token + "~"), Reason.WRONG_TYPE)


@pytest.mark.parametrize("typ", ["JWT", "kb+jwt", "sd-jwt", "example+sd-jwt", "dc+sd-jwt+x"])
def test_rejects_wrong_typ(typ: str) -> None:
    token = sign_raw(issuer_header(typ=typ), envelope(), ISSUER_KEY)
    assert_rejected(run(token + "~"), Reason.WRONG_TYPE)


def test_unknown_issuer_is_reported_before_the_signature_is_checked() -> None:
    attacker = generate_signing_key("ES256")
    payload = envelope(iss="https://unknown.example")
    token = sign_raw(issuer_header(kid=attacker.kid), payload, attacker)
    assert_rejected(run(token + "~"), Reason.UNKNOWN_ISSUER)
    # Even with a signature that could never verify.
    head, body, _ = token.split(".")
    assert_rejected(run(f"{head}.{body}.{b64url_encode(bytes(64))}~"), Reason.UNKNOWN_ISSUER)


def test_issuer_identifier_must_match_exactly() -> None:
    for iss in (ISSUER + "/", ISSUER.upper(), " " + ISSUER):
        token = sign_raw(issuer_header(), envelope(iss=iss), ISSUER_KEY)
        assert_rejected(run(token + "~"), Reason.UNKNOWN_ISSUER)


@pytest.mark.parametrize("iss", [None, 1, ["https://issuer.thiqa.example"], {"id": 1}])
def test_rejects_missing_or_non_string_iss(iss: Any) -> None:
    payload = envelope()
    payload.pop("iss")
    if iss is not None:
        payload["iss"] = iss
    assert_rejected(run(sign_raw(issuer_header(), payload, ISSUER_KEY) + "~"), Reason.MALFORMED)


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "RS256", "ES512"])
def test_rejects_algorithm_outside_the_allow_list(alg: str) -> None:
    token = sign_raw(issuer_header(alg=alg), envelope(), ISSUER_KEY)
    assert_rejected(run(token + "~"), Reason.UNSUPPORTED_ALGORITHM)


def test_rejects_unsigned_alg_none_credential() -> None:
    token = b64json(issuer_header(alg="none")) + "." + b64json(envelope()) + "."
    assert_rejected(run(token + "~"), Reason.UNSUPPORTED_ALGORITHM)


def test_rejects_hs256_signed_with_the_issuers_public_key_as_secret() -> None:
    # The classic key-confusion attack: HMAC keyed with the public key everyone knows.
    secret = json.dumps(ISSUER_KEY.verification_key().public_jwk()).encode()
    signing_input = f"{b64json(issuer_header(alg='HS256'))}.{b64json(envelope())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    assert_rejected(run(token + "~"), Reason.UNSUPPORTED_ALGORITHM)


@pytest.mark.parametrize("alg", ["ES384", "EdDSA"])
def test_rejects_allowed_alg_that_is_not_the_keys_alg(alg: str) -> None:
    # The header's alg never chooses how to verify: the issuer's key is ES256 only.
    signer = generate_signing_key(alg)
    token = sign_raw(issuer_header(alg=alg), envelope(), signer)
    assert_rejected(run(token + "~"), Reason.UNSUPPORTED_ALGORITHM)


def test_rejects_missing_kid() -> None:
    token = sign_raw(issuer_header(kid=None), envelope(), ISSUER_KEY)
    assert_rejected(run(token + "~"), Reason.UNKNOWN_KEY)


def test_rejects_unknown_kid() -> None:
    token = sign_raw(issuer_header(kid="not-a-key"), envelope(), ISSUER_KEY)
    assert_rejected(run(token + "~"), Reason.UNKNOWN_KEY)


def test_rejects_kid_of_another_trusted_issuer() -> None:
    other = "https://other-issuer.example"
    trust = {**trusted(), **trusted(OTHER_KEY, issuer=other)}
    token = sign_raw(issuer_header(kid=OTHER_KEY.kid), envelope(), OTHER_KEY)
    assert_rejected(run(token + "~", trust=trust), Reason.UNKNOWN_KEY)


def test_embedded_jwk_in_the_header_is_never_trusted() -> None:
    attacker = generate_signing_key("ES256")
    members = issuer_header(kid=attacker.kid, jwk=attacker.verification_key().public_jwk())
    assert_rejected(run(sign_raw(members, envelope(), attacker) + "~"), Reason.UNKNOWN_KEY)
    members = issuer_header(jwk=attacker.verification_key().public_jwk())
    assert_rejected(run(sign_raw(members, envelope(), attacker) + "~"), Reason.INVALID_SIGNATURE)


def test_rejects_tampered_payload() -> None:
    parts = split(CRED)
    head, body, sig = parts.issuer_jwt.split(".")
    payload = json.loads(b64url_decode(body))
    payload["exp"] = NOW + 10**8
    forged = f"{head}.{b64json(payload)}.{sig}~"
    inspection = run(forged)
    assert_rejected(inspection, Reason.INVALID_SIGNATURE)
    assert inspection.claims is None
    assert inspection.issuer is None


def test_rejects_signature_by_another_key_under_the_issuers_kid() -> None:
    token = sign_raw(issuer_header(), envelope(), OTHER_KEY)
    assert_rejected(run(token + "~"), Reason.INVALID_SIGNATURE)


def test_rejects_zero_signature() -> None:
    head, body, _ = split(CRED).issuer_jwt.split(".")
    assert_rejected(run(f"{head}.{body}.{b64url_encode(bytes(64))}~"), Reason.INVALID_SIGNATURE)


def test_first_failure_before_the_signature_is_the_only_one() -> None:
    # Expired, untrusted type, no status: none of it is reported for an unsigned token.
    payload = envelope(exp=1, vct="urn:other", status=None)
    token = sign_raw(issuer_header(), payload, OTHER_KEY)
    assert_rejected(run(token + "~"), Reason.INVALID_SIGNATURE)


def test_rejects_tampered_disclosure() -> None:
    parts = split(holder.present(CRED, ["given_name"]))
    original = json.loads(b64url_decode(parts.disclosures[0]))
    original[2] = "Forged"
    forged = b64url_encode(json.dumps(original).encode())
    inspection = run(f"{parts.issuer_jwt}~{forged}~")
    assert_rejected(inspection, Reason.INVALID_DISCLOSURE)
    assert inspection.signature_verified


# --- after the signature: every failure is collected ---------------------------------------


def test_collects_every_failure_after_the_signature() -> None:
    payload = envelope(exp=NOW - SKEW, vct="urn:other")
    payload.pop("status")
    body = sd_jwt(payload)
    presentation = body + kb_jwt(body, key=OTHER_KEY)
    inspection = run(presentation, trust=trusted(types=frozenset({VCT})))
    assert_rejected(
        inspection,
        Reason.EXPIRED,
        Reason.UNTRUSTED_TYPE,
        Reason.INVALID_STATUS_REFERENCE,
        Reason.INVALID_KEY_BINDING,
    )


@pytest.mark.parametrize("vct", [None, "", 1, ["x"]])
def test_rejects_missing_or_invalid_vct(vct: Any) -> None:
    payload = envelope()
    payload.pop("vct")
    if vct is not None:
        payload["vct"] = vct
    inspection = run(sd_jwt(payload))
    assert_rejected(inspection, Reason.MALFORMED)
    assert inspection.vct is None


def test_rejects_vct_the_issuer_is_not_trusted_for() -> None:
    inspection = run(sd_jwt(envelope(vct="https://thiqa.example/credentials/passport")))
    assert_rejected(inspection, Reason.UNTRUSTED_TYPE)


# --- time, with the clock skew boundaries exact --------------------------------------------


def test_expired_exactly_at_exp_plus_skew() -> None:
    assert_rejected(run(sd_jwt(envelope(exp=NOW - SKEW))), Reason.EXPIRED)


def test_not_expired_one_second_before_exp_plus_skew() -> None:
    assert run(sd_jwt(envelope(exp=NOW - SKEW + 1))).failures == ()


def test_expiry_without_skew_is_exp_itself() -> None:
    policy = Policy(clock_skew=0)
    assert_rejected(run(sd_jwt(envelope(exp=NOW)), policy=policy), Reason.EXPIRED)
    assert run(sd_jwt(envelope(exp=NOW + 1)), policy=policy).failures == ()


def test_rejects_credential_expired_long_ago() -> None:
    inspection = run(holder.present(CRED, ["given_name"]), now=NOW + 3600 + SKEW)
    assert_rejected(inspection, Reason.EXPIRED)
    assert run(holder.present(CRED, ["given_name"]), now=NOW + 3600 + SKEW - 1).failures == ()


def test_nbf_at_now_plus_skew_is_valid_one_second_later_is_not() -> None:
    assert run(sd_jwt(envelope(nbf=NOW + SKEW))).failures == ()
    assert_rejected(run(sd_jwt(envelope(nbf=NOW + SKEW + 1))), Reason.NOT_YET_VALID)


def test_iat_at_now_plus_skew_is_valid_one_second_later_is_not() -> None:
    assert run(sd_jwt(envelope(iat=NOW + SKEW))).failures == ()
    assert_rejected(run(sd_jwt(envelope(iat=NOW + SKEW + 1))), Reason.NOT_YET_VALID)


def test_credential_issued_in_the_future_is_not_yet_valid() -> None:
    future = issue(issued_at=NOW + 1000, expires_at=NOW + 5000)
    assert_rejected(run(holder.present(future, [])), Reason.NOT_YET_VALID)


def test_disclosed_iat_is_checked_like_a_clear_one() -> None:
    """SD-JWT VC lets an issuer make ``iat`` selectively disclosable; time checks run on the
    payload with its disclosures applied (RFC 9901 §7.1), so a future one is caught."""
    for iat, expected in (
        (NOW - 100, set()),
        (NOW + SKEW + 1, {Reason.NOT_YET_VALID}),
        ("yesterday", {Reason.MALFORMED}),
    ):
        disclosure = make_disclosure(iat, name="iat")
        inspection = run(sd_jwt(envelope(iat=None, _sd=[ref(disclosure)]), [disclosure]))
        assert reasons(inspection) == expected
        if expected:
            assert not conclude(inspection, StatusValue.VALID).valid


def test_rejects_missing_exp_unless_policy_allows() -> None:
    payload = envelope(exp=None)
    assert "exp" not in payload
    assert_rejected(run(sd_jwt(payload)), Reason.MALFORMED)
    inspection = run(sd_jwt(payload), policy=Policy(require_exp=False))
    assert inspection.failures == ()
    assert inspection.expires_at is None


@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["1700000000", True, [NOW], -1, 2**53, 1e300])
def test_rejects_time_claim_that_is_not_a_numeric_date(name: str, value: Any) -> None:
    assert_rejected(run(sd_jwt(envelope(**{name: value}))), Reason.MALFORMED)


def test_accepts_fractional_numeric_dates() -> None:
    inspection = run(sd_jwt(envelope(exp=NOW + 10.5, iat=NOW - 0.5)))
    assert inspection.failures == ()
    assert inspection.expires_at == NOW + 10


def test_expired_and_not_yet_valid_are_both_reported() -> None:
    inspection = run(sd_jwt(envelope(exp=NOW - SKEW, nbf=NOW + SKEW + 1)))
    assert_rejected(inspection, Reason.EXPIRED, Reason.NOT_YET_VALID)


# --- status reference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "missing",
        "https://status",
        {},
        {"status_list": "x"},
        {"status_list": {"uri": "https://s"}},
        {"status_list": {"idx": -1, "uri": "https://s"}},
        {"status_list": {"idx": "1", "uri": "https://s"}},
        {"status_list": {"idx": True, "uri": "https://s"}},
        {"status_list": {"idx": 1.0, "uri": "https://s"}},
        {"status_list": {"idx": 1}},
        {"status_list": {"idx": 1, "uri": ""}},
        {"status_list": {"idx": 1, "uri": 5}},
    ],
)
def test_rejects_invalid_status_reference(status: Any) -> None:
    payload = envelope()
    if status == "missing":
        payload.pop("status")
    else:
        payload["status"] = status
    inspection = run(sd_jwt(payload))
    assert_rejected(inspection, Reason.INVALID_STATUS_REFERENCE)
    assert inspection.status_ref is None


def test_reads_status_reference_with_index_zero() -> None:
    payload = envelope(status={"status_list": {"idx": 0, "uri": "https://s/9"}})
    inspection = run(sd_jwt(payload))
    assert inspection.failures == ()
    assert inspection.status_ref == StatusReference(uri="https://s/9", idx=0)


# --- key binding -----------------------------------------------------------------------------


def test_missing_key_binding_when_a_nonce_is_expected() -> None:
    inspection = run(holder.present(CRED, ["given_name"]), expect=Expectations(nonce=NONCE))
    assert_rejected(inspection, Reason.KEY_BINDING_REQUIRED)
    assert not inspection.key_bound


def test_missing_key_binding_when_an_audience_is_expected() -> None:
    inspection = run(holder.present(CRED, []), expect=Expectations(audience=AUDIENCE))
    assert_rejected(inspection, Reason.KEY_BINDING_REQUIRED)


def test_rejects_wrong_nonce() -> None:
    inspection = run(present_bound(CRED, nonce="other"), expect=bound_expectations())
    assert_rejected(inspection, Reason.NONCE_MISMATCH)
    assert not inspection.key_bound


def test_rejects_wrong_audience() -> None:
    inspection = run(
        present_bound(CRED, audience="https://other.example"), expect=bound_expectations()
    )
    assert_rejected(inspection, Reason.AUDIENCE_MISMATCH)


def test_reports_wrong_nonce_and_wrong_audience_together() -> None:
    presentation = present_bound(CRED, nonce="x", audience="y")
    assert_rejected(
        run(presentation, expect=bound_expectations()),
        Reason.NONCE_MISMATCH,
        Reason.AUDIENCE_MISMATCH,
    )


def test_nonce_compares_exactly() -> None:
    for nonce in (NONCE + " ", NONCE.upper(), NONCE[:-1], ""):
        inspection = run(present_bound(CRED, nonce=nonce), expect=bound_expectations())
        assert_rejected(inspection, Reason.NONCE_MISMATCH)


def test_nonce_with_a_lone_surrogate_is_invalid_key_binding_not_a_crash() -> None:
    body = holder.present(CRED, ["given_name"])
    payload = {"iat": NOW, "aud": AUDIENCE, "nonce": "\ud800", "sd_hash": digest(body)}
    payload_b64 = b64url_encode(json.dumps(payload).encode("ascii"))  # "\\ud800" escaped
    kb = sign_raw({"alg": "ES256", "typ": "kb+jwt"}, payload_b64, HOLDER_KEY)
    inspection = run(body + kb, expect=bound_expectations())
    # Strict JSON refuses lone surrogates, so the KB-JWT does not even parse.
    assert_rejected(inspection, Reason.INVALID_KEY_BINDING)


@pytest.mark.parametrize("sd_hash", ["é" * 43, "\ud800", "اختبار"])
def test_non_ascii_sd_hash_is_invalid_key_binding_not_a_crash(sd_hash: str) -> None:
    body = holder.present(CRED, ["given_name"])
    payload = {"iat": NOW, "aud": AUDIENCE, "nonce": NONCE, "sd_hash": sd_hash}
    payload_b64 = b64url_encode(json.dumps(payload).encode("ascii"))
    kb = sign_raw({"alg": "ES256", "typ": "kb+jwt"}, payload_b64, HOLDER_KEY)
    assert_rejected(run(body + kb, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_kb_iat_window_is_exact_at_the_stale_end() -> None:
    oldest = NOW - KB_MAX_AGE - SKEW
    inspection = run(present_bound(CRED, now=oldest), expect=bound_expectations())
    assert inspection.failures == ()
    inspection = run(present_bound(CRED, now=oldest - 1), expect=bound_expectations())
    assert_rejected(inspection, Reason.INVALID_KEY_BINDING)


def test_kb_iat_window_is_exact_at_the_future_end() -> None:
    newest = NOW + SKEW
    inspection = run(present_bound(CRED, now=newest), expect=bound_expectations())
    assert inspection.failures == ()
    inspection = run(present_bound(CRED, now=newest + 1), expect=bound_expectations())
    assert_rejected(inspection, Reason.INVALID_KEY_BINDING)


def test_kb_window_follows_the_policy() -> None:
    policy = Policy(clock_skew=0, kb_max_age=10)
    presentation = present_bound(CRED, now=NOW - 10)
    assert run(presentation, policy=policy, expect=bound_expectations()).failures == ()
    presentation = present_bound(CRED, now=NOW - 11)
    assert_rejected(
        run(presentation, policy=policy, expect=bound_expectations()), Reason.INVALID_KEY_BINDING
    )


def kb_of(presentation: str) -> str:
    kb_jwt = split(presentation).kb_jwt
    assert kb_jwt is not None
    return kb_jwt


def test_rejects_kb_jwt_made_for_another_presentation() -> None:
    shown = present_bound(CRED, ["given_name"])
    other_body = holder.present(CRED, ["family_name"])
    swapped = other_body + kb_of(shown)
    assert_rejected(run(swapped, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_rejects_disclosure_added_after_key_binding() -> None:
    bound = present_bound(CRED, ["given_name"])
    parts = split(bound)
    extra = next(d for d in split(CRED).disclosures if d not in parts.disclosures)
    widened = parts.hashed_part + extra + "~" + kb_of(bound)
    assert_rejected(run(widened, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_rejects_disclosure_removed_after_key_binding() -> None:
    bound = present_bound(CRED, ["given_name", "family_name"])
    parts = split(bound)
    narrowed = parts.issuer_jwt + "~" + parts.disclosures[0] + "~" + kb_of(bound)
    assert_rejected(run(narrowed, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_rejects_kb_jwt_signed_by_the_issuer_key() -> None:
    body = holder.present(CRED, ["given_name"])
    presentation = body + kb_jwt(body, key=ISSUER_KEY)
    assert_rejected(run(presentation, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_rejects_kb_jwt_signed_by_another_key() -> None:
    body = holder.present(CRED, ["given_name"])
    presentation = body + kb_jwt(body, key=generate_signing_key("ES256"))
    assert_rejected(run(presentation, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_rejects_kb_jwt_on_a_credential_without_holder_key() -> None:
    unbound = issue(holder_key=None)
    body = holder.present(unbound, ["given_name"])
    inspection = run(body + kb_jwt(body), expect=bound_expectations())
    assert_rejected(inspection, Reason.INVALID_KEY_BINDING)
    assert not inspection.key_bound


@pytest.mark.parametrize("typ", ["JWT", "jwt", "dc+sd-jwt", "kb+jwt+x", None])
def test_rejects_kb_jwt_of_the_wrong_typ(typ: str | None) -> None:
    body = holder.present(CRED, ["given_name"])
    header = {"alg": "ES256", "typ": typ} if typ else {"alg": "ES256"}
    presentation = body + kb_jwt(body, header=header)
    assert_rejected(run(presentation, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_accepts_kb_jwt_typ_with_application_prefix() -> None:
    body = holder.present(CRED, ["given_name"])
    presentation = body + kb_jwt(body, header={"alg": "ES256", "typ": "application/kb+jwt"})
    assert run(presentation, expect=bound_expectations()).failures == ()


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "EdDSA"])
def test_rejects_kb_jwt_with_an_algorithm_other_than_the_holder_keys(alg: str) -> None:
    body = holder.present(CRED, ["given_name"])
    signer = generate_signing_key(alg) if alg in ("ES384", "EdDSA") else HOLDER_KEY
    presentation = body + kb_jwt(body, key=signer, header={"alg": alg, "typ": "kb+jwt"})
    assert_rejected(run(presentation, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


@pytest.mark.parametrize("claim", ["iat", "sd_hash", "nonce", "aud"])
def test_rejects_kb_jwt_missing_a_required_claim(claim: str) -> None:
    body = holder.present(CRED, ["given_name"])
    removed: dict[str, Any] = {claim: None}
    presentation = body + kb_jwt(body, **removed)
    inspection = run(presentation)  # required even when the verifier expects nothing
    assert_rejected(inspection, Reason.INVALID_KEY_BINDING)


@pytest.mark.parametrize(
    ("claim", "value"),
    [("iat", "now"), ("iat", True), ("sd_hash", 1), ("nonce", 1), ("aud", ["x"])],
)
def test_rejects_kb_jwt_claim_of_the_wrong_type(claim: str, value: Any) -> None:
    body = holder.present(CRED, ["given_name"])
    presentation = body + kb_jwt(body, **{claim: value})
    assert_rejected(run(presentation), Reason.INVALID_KEY_BINDING)


@pytest.mark.parametrize("kb", ["garbage", "a.b.c", "a.b", "x" * 10])
def test_rejects_kb_jwt_that_is_not_a_jws(kb: str) -> None:
    body = holder.present(CRED, ["given_name"])
    assert_rejected(run(body + kb, expect=bound_expectations()), Reason.INVALID_KEY_BINDING)


def test_rejects_kb_jwt_whose_sd_hash_uses_another_algorithm() -> None:
    body = holder.present(CRED, ["given_name"])
    presentation = body + kb_jwt(body, sd_hash=digest(body, "sha-384"))
    assert_rejected(run(presentation), Reason.INVALID_KEY_BINDING)


@pytest.mark.parametrize(
    "cnf",
    [
        {"jwk": {**HOLDER_KEY.verification_key().public_jwk(), "d": "AAAA"}},
        {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        {"jwk": "not a jwk"},
        {"kid": "holder-key"},
        "cnf",
    ],
)
def test_rejects_key_binding_against_an_invalid_holder_key(cnf: Any) -> None:
    payload = envelope(cnf=cnf)
    body = sd_jwt(payload)
    assert_rejected(run(body + kb_jwt(body)), Reason.INVALID_KEY_BINDING)


def test_eddsa_holder_key_binds() -> None:
    ed = generate_signing_key("EdDSA")
    cred = issue(holder_key=ed)
    inspection = run(present_bound(cred, key=ed), expect=bound_expectations())
    assert inspection.failures == ()
    assert inspection.key_bound


# --- typ: current and legacy ---------------------------------------------------------------


def test_accepts_legacy_typ_when_policy_allows() -> None:
    body = sd_jwt(envelope(), typ="vc+sd-jwt")
    assert run(body).failures == ()
    assert run(body, policy=Policy(accept_legacy_typ=True)).failures == ()


def test_rejects_legacy_typ_when_policy_does_not_allow() -> None:
    body = sd_jwt(envelope(), typ="vc+sd-jwt")
    assert_rejected(run(body, policy=Policy(accept_legacy_typ=False)), Reason.WRONG_TYPE)
    assert run(sd_jwt(envelope()), policy=Policy(accept_legacy_typ=False)).failures == ()


def test_policy_lists_its_credential_typs() -> None:
    assert Policy().credential_typs == frozenset({"dc+sd-jwt", "vc+sd-jwt"})
    assert Policy(accept_legacy_typ=False).credential_typs == frozenset({"dc+sd-jwt"})


# --- conclude and the verdict ----------------------------------------------------------------


def _clean() -> Inspection:
    inspection = run(holder.present(CRED, ["given_name"]))
    assert inspection.failures == ()
    return inspection


def test_conclude_valid_status_gives_a_valid_verdict_with_claims() -> None:
    verdict = conclude(_clean(), StatusValue.VALID)
    assert verdict.valid
    assert verdict.failures == ()
    assert verdict.claims == {"given_name": "Amina"}
    assert verdict.issuer == ISSUER


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (StatusValue.INVALID, Reason.REVOKED),
        (StatusValue.SUSPENDED, Reason.SUSPENDED),
        (StatusValue.APPLICATION_SPECIFIC, Reason.STATUS_UNAVAILABLE),
        (None, Reason.STATUS_UNAVAILABLE),
    ],
)
def test_conclude_any_other_status_is_not_valid(status: StatusValue | None, reason: Reason) -> None:
    verdict = conclude(_clean(), status)
    assert not verdict.valid
    assert verdict.reasons == frozenset({reason})
    assert verdict.claims is None  # claims are released only with a valid verdict
    assert verdict.credential_status is status
    assert verdict.issuer == ISSUER


@pytest.mark.parametrize("status", [None, *StatusValue])
def test_conclude_unavailable_store_is_never_valid(status: StatusValue | None) -> None:
    verdict = conclude(_clean(), status, unavailable=True)
    assert not verdict.valid
    assert verdict.reasons == frozenset({Reason.STATUS_UNAVAILABLE})


def test_conclude_keeps_the_inspection_failures() -> None:
    inspection = run(sd_jwt(envelope(exp=NOW - SKEW)))
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.reasons == frozenset({Reason.EXPIRED})
    verdict = conclude(inspection, StatusValue.INVALID)
    assert verdict.reasons == frozenset({Reason.EXPIRED, Reason.REVOKED})
    # No lookup on a failed inspection adds nothing: the failure already decides.
    assert conclude(inspection, None).reasons == frozenset({Reason.EXPIRED})


def test_conclude_without_a_signature_adds_no_status_failure() -> None:
    inspection = run("garbage~")
    assert not inspection.signature_verified
    assert conclude(inspection, None).reasons == frozenset({Reason.MALFORMED})


def test_verdict_is_valid_exactly_when_it_lists_no_failure() -> None:
    assert Verdict(failures=()).valid
    verdict = Verdict(failures=(Failure.of(Reason.REVOKED),))
    assert not verdict.valid
    assert verdict.reasons == frozenset({Reason.REVOKED})
    with pytest.raises(TypeError):
        # The call mypy refuses is the test: reasons are derived, never given.
        Verdict(failures=(), reasons=frozenset())  # type: ignore[call-arg]


def test_every_reason_has_a_fixed_message() -> None:
    assert set(MESSAGES) == set(Reason)
    assert Failure.of(Reason.EXPIRED).message == MESSAGES[Reason.EXPIRED]
    assert Failure.of(Reason.EXPIRED, "x").message == MESSAGES[Reason.EXPIRED] + " (x)"


def test_failure_messages_never_repeat_claim_values() -> None:
    bound = present_bound(CRED, list(CLAIMS), nonce="secret-nonce-value")
    inspection = run(bound, expect=bound_expectations(), now=NOW + 10**6)
    assert reasons(inspection) == {
        Reason.EXPIRED,
        Reason.NONCE_MISMATCH,
        Reason.INVALID_KEY_BINDING,
    }
    text = " ".join(f.message for f in conclude(inspection, StatusValue.INVALID).failures)
    for value in ("Amina", "Benali", "AB123456", "secret-nonce-value", NONCE, ISSUER):
        assert value not in text


def test_inspect_never_raises_on_hostile_input() -> None:
    body = holder.present(CRED, ["given_name"])
    hostile = [
        "~" * 5000,
        "." * 5000 + "~",
        b64json({"alg": "ES256", "typ": "dc+sd-jwt", "x": "[" * 50}) + ".e30.AA~",
        b64url_encode(b'{"alg":"ES256","typ":"dc+sd-jwt","n":' + b"9" * 5000 + b"}") + ".e30.AA~",
        b64url_encode(b"[" * 5000) + ".e30.AA~",
        body + b64url_encode(b"[" * 5000) + "~",
        body + b64url_encode(b'["s","a",' + b"1" * 5000 + b"]") + "~",
        body + b64url_encode(b'["s","a",1e999]') + "~",
        body
        + b64json({"alg": "ES256", "typ": "kb+jwt"})
        + "."
        + b64url_encode(b"[" * 3000)
        + ".AA",
    ]
    for text in hostile:
        inspection = run(text, expect=bound_expectations())
        assert inspection.failures
        assert not conclude(inspection, StatusValue.VALID).valid


# --- property: no single-character change of a valid presentation is valid ------------------

_VALID_BOUND = present_bound(CRED, ["given_name", ("address", "locality")])
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~.=+/ "


def test_the_presentation_used_for_mutations_is_valid() -> None:
    inspection = run(_VALID_BOUND, expect=bound_expectations())
    assert inspection.failures == ()
    assert conclude(inspection, StatusValue.VALID).valid


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.integers(min_value=0, max_value=len(_VALID_BOUND) - 1),
    st.sampled_from(_ALPHABET),
    st.sampled_from(["replace", "insert", "delete"]),
)
def test_no_single_character_mutation_is_valid(index: int, char: str, how: str) -> None:
    if how == "replace":
        mutated = _VALID_BOUND[:index] + char + _VALID_BOUND[index + 1 :]
    elif how == "insert":
        mutated = _VALID_BOUND[:index] + char + _VALID_BOUND[index:]
    else:
        mutated = _VALID_BOUND[:index] + _VALID_BOUND[index + 1 :]
    if mutated == _VALID_BOUND:
        return  # replacing a character by itself changes nothing
    inspection = run(mutated, expect=bound_expectations())
    assert inspection.failures
    assert not conclude(inspection, StatusValue.VALID).valid


def test_rejects_disclosure_from_another_issuance() -> None:
    foreign = split(issue()).disclosures[0]  # same claims, another issuance's salt
    body = split(CRED).issuer_jwt + "~" + foreign + "~"
    assert_rejected(run(body), Reason.INVALID_DISCLOSURE)


def test_rejects_trusted_issuer_mapping_by_a_different_identifier() -> None:
    # The map key is what the token's iss must equal; the TrustedIssuer is whose keys verify.
    issuer = trusted()[ISSUER]
    trust = {"https://elsewhere.example": issuer}
    assert_rejected(run(sd_jwt(envelope()), trust=trust), Reason.UNKNOWN_ISSUER)
    # The same TrustedIssuer under the token's iss accepts it: the map key alone refused it.
    assert run(sd_jwt(envelope()), trust={ISSUER: issuer}).failures == ()


def test_disclosed_claim_named_like_the_envelope_is_not_returned() -> None:
    # Nested envelope names are ordinary data; top-level ones come from the signed payload.
    item = make_disclosure({"exp": 1, "iss": "x"}, name="event")
    inspection = run(sd_jwt(envelope(_sd=[ref(item)]), [item]))
    assert inspection.failures == ()
    assert inspection.claims == {"event": {"exp": 1, "iss": "x"}}


def test_policy_can_require_key_binding_for_bound_credentials_without_a_nonce() -> None:
    bound = holder.present(CRED, ["given_name"])  # CRED is bound to a holder key, no KB-JWT
    assert_rejected(
        run(bound, policy=Policy(require_key_binding=True)), Reason.KEY_BINDING_REQUIRED
    )
    # The default follows the API contract: a KB-JWT is required when a nonce is given.
    assert run(bound).failures == ()
