"""One reading of JWT time claims: what a NumericDate is, the window, and that credentials,
key-binding JWTs, key proofs and status list tokens all apply the same rule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.core import holder, jws
from service.core.keys import generate_signing_key, public_jwk
from service.core.openid4vci import PROOF_TYP, CredentialRequestError, check_proof
from service.core.reasons import Failure, Reason
from service.core.status_list import StatusListError
from service.core.status_token import read_status_list, sign_status_list, status_list_claims
from service.core.time_claims import (
    MAX_NUMERIC_DATE,
    TimeClaimFailure,
    TimeProblem,
    is_numeric_date,
    time_claim_failures,
)

from .helpers import NOW, envelope, issue, kb_jwt, run, sd_jwt

LEEWAY = 60

# -- NumericDate -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, NOW, 0.0, NOW + 0.5, MAX_NUMERIC_DATE - 1])
def test_numeric_dates(value: Any) -> None:
    assert is_numeric_date(value) is True


@pytest.mark.parametrize(
    "value",
    [
        -1,
        -0.5,
        MAX_NUMERIC_DATE,
        float(MAX_NUMERIC_DATE),
        1e300,
        math.inf,
        -math.inf,
        math.nan,
        True,
        False,
        "1700000000",
        None,
        [NOW],
        {"t": NOW},
    ],
)
def test_not_numeric_dates(value: Any) -> None:
    assert is_numeric_date(value) is False


# -- the window --------------------------------------------------------------------------------


def failures(claims: dict[str, Any], **options: Any) -> tuple[TimeClaimFailure, ...]:
    return time_claim_failures(claims, now=NOW, leeway=LEEWAY, **options)


def test_no_time_claims_and_none_required_is_no_failure() -> None:
    assert failures({}) == ()


def test_each_bound_is_exact() -> None:
    assert failures({"exp": NOW - LEEWAY + 1, "nbf": NOW + LEEWAY, "iat": NOW + LEEWAY}) == ()
    assert failures({"exp": NOW - LEEWAY}) == (TimeClaimFailure("exp", TimeProblem.EXPIRED),)
    assert failures({"nbf": NOW + LEEWAY + 1}) == (
        TimeClaimFailure("nbf", TimeProblem.NOT_YET_VALID),
    )
    assert failures({"iat": NOW + LEEWAY + 1}) == (
        TimeClaimFailure("iat", TimeProblem.NOT_YET_VALID),
    )
    assert failures({"iat": NOW - 300 - LEEWAY}, max_age=300) == ()
    assert failures({"iat": NOW - 300 - LEEWAY - 1}, max_age=300) == (
        TimeClaimFailure("iat", TimeProblem.TOO_OLD),
    )
    # Without a max age, an old iat is only old.
    assert failures({"iat": 0}) == ()


def test_required_claims_that_are_absent_are_missing() -> None:
    assert failures({"nbf": NOW}, required=("iat", "exp")) == (
        TimeClaimFailure("iat", TimeProblem.MISSING),
        TimeClaimFailure("exp", TimeProblem.MISSING),
    )


def test_every_failure_is_reported_in_a_fixed_order() -> None:
    claims = {"iat": NOW + LEEWAY + 1, "nbf": NOW + LEEWAY + 1, "exp": NOW - LEEWAY}
    assert failures(claims) == (
        TimeClaimFailure("exp", TimeProblem.EXPIRED),
        TimeClaimFailure("nbf", TimeProblem.NOT_YET_VALID),
        TimeClaimFailure("iat", TimeProblem.NOT_YET_VALID),
    )


def test_a_malformed_claim_stops_the_window_checks() -> None:
    # An expired exp beside a malformed iat: only the shapes are reported, since the window
    # of a token with an unreadable time claim means nothing.
    claims = {"iat": "yesterday", "nbf": None, "exp": NOW - 10_000}
    assert failures(claims, required=("exp",)) == (
        TimeClaimFailure("iat", TimeProblem.MALFORMED),
        TimeClaimFailure("nbf", TimeProblem.MALFORMED),
    )


# -- every kind of token applies the same rule ------------------------------------------------

#: Values each kind once read differently: the proof check accepted any finite number, the
#: status list check any number >= 0, the credential check 0 <= v < 2^53.
NOT_A_NUMERIC_DATE = [-1, MAX_NUMERIC_DATE, 1e300, True, "1700000000", [NOW]]
KEY = generate_signing_key("ES256")
HOLDER = generate_signing_key("ES256")
STATUS_URI = "https://status.example/lists/1"
PROOF_AUDIENCE = "https://id.example.ma"


def credential_failures(iat: Any) -> tuple[Failure, ...]:
    return run(sd_jwt(envelope(iat=iat))).failures


def key_binding_failures(iat: Any) -> tuple[Failure, ...]:
    body = holder.present(issue(), ["given_name"])
    return run(body + kb_jwt(body, iat=iat)).failures


def proof_refusal(iat: Any) -> str | None:
    try:
        proof = jws.encode(
            {"aud": PROOF_AUDIENCE, "iat": iat, "nonce": "n" * 32},
            HOLDER,
            typ=PROOF_TYP,
            include_kid=False,
            extra_header={"jwk": public_jwk(HOLDER.key)},
        )
        check_proof(
            proof,
            audience=PROOF_AUDIENCE,
            now=NOW,
            clock_skew=LEEWAY,
            max_age=300,
        )
    except CredentialRequestError as refusal:
        return f"{refusal.error}: {refusal.description}"
    return None


def status_list_refusal(iat: Any, **claims: Any) -> str | None:
    signed = status_list_claims(
        bytes(16), uri=STATUS_URI, issuer="https://issuer.example", now=NOW, ttl=60, lifetime=600
    )
    signed.update(iat=iat, **claims)
    token = sign_status_list(signed, KEY)
    try:
        read_status_list(token, keys={KEY.kid: KEY.verification_key()}, uri=STATUS_URI, now=NOW)
    except StatusListError as refusal:
        return str(refusal)
    return None


@pytest.mark.parametrize("iat", NOT_A_NUMERIC_DATE)
def test_every_token_kind_refuses_the_same_iat_values(iat: Any) -> None:
    assert credential_failures(iat) == (Failure.of(Reason.MALFORMED, "iat is not a NumericDate"),)
    assert key_binding_failures(iat) == (Failure.of(Reason.INVALID_KEY_BINDING, "iat"),)
    assert proof_refusal(iat) == "invalid_proof: The proof has no numeric iat."
    assert status_list_refusal(iat) == "status list iat missing or in the future"


@pytest.mark.parametrize("iat", [NOW, NOW - 0.5, NOW + LEEWAY])
def test_every_token_kind_accepts_the_same_iat_values(iat: Any) -> None:
    assert credential_failures(iat) == ()
    assert key_binding_failures(iat) == ()
    assert proof_refusal(iat) is None
    assert status_list_refusal(iat) is None


def test_every_token_kind_refuses_an_iat_beyond_the_leeway() -> None:
    iat = NOW + LEEWAY + 1
    assert credential_failures(iat) == (Failure.of(Reason.NOT_YET_VALID),)
    assert key_binding_failures(iat) == (
        Failure.of(Reason.INVALID_KEY_BINDING, "iat outside the window"),
    )
    assert proof_refusal(iat) == "invalid_proof: The proof's iat is in the future."
    assert status_list_refusal(iat) == "status list iat missing or in the future"


def test_a_key_binding_jwt_past_its_own_exp_is_refused() -> None:
    body = holder.present(issue(), ["given_name"])
    failures = run(body + kb_jwt(body, exp=NOW - LEEWAY)).failures
    assert failures == (Failure.of(Reason.INVALID_KEY_BINDING, "exp has passed"),)


def test_a_status_list_not_valid_yet_or_with_a_bad_exp_is_refused() -> None:
    assert status_list_refusal(NOW, nbf=NOW + LEEWAY + 1) == "status list not valid yet"
    assert status_list_refusal(NOW, exp=MAX_NUMERIC_DATE) == (
        "status list exp is not a NumericDate"
    )
    assert status_list_refusal(NOW, exp=NOW - LEEWAY) == "status list expired"
