"""The OpenID4VP core: requests, the DCQL subset, vp_token shape, judging and minimising."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from service.core.encoding import b64url_decode
from service.core.openid4vp import (
    Outcome,
    PresentationRequest,
    RequestError,
    VpTokenError,
    check_paths,
    check_purpose,
    dcql_query,
    judge,
    minimise,
    new_secret,
    read_vp_token,
    select,
    wallet_error_code,
    wallet_uri,
)
from service.core.reasons import Failure, Reason
from service.core.status_list import StatusValue
from service.core.verify import Verdict

VCT = "https://thiqa.example/types/national-id"
CLAIMS: dict[str, Any] = {
    "given_name": "Amina",
    "family_name#ar": "الإدريسي",
    "birthdate": "1990-04-12",
    "place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"},
}


def request(**changes: Any) -> PresentationRequest:
    values: dict[str, Any] = {
        "request_id": "r" * 22,
        "response_uri": "https://thiqa.example/presentation-responses/" + "r" * 22,
        "nonce": "n-0S6_WzA2Mj",
        "state": "s" * 22,
        "vct": VCT,
        "paths": (("given_name",), ("place_of_birth", "locality")),
        "purpose": "فتح حساب",
        "client_name": "bank-app",
        "issued_ms": 1_800_000_000_250,
        "expires_ms": 1_800_000_300_250,
        **changes,
    }
    return PresentationRequest(**values)


def verdict(
    claims: dict[str, Any] | None = CLAIMS, *, vct: str = VCT, failures: tuple[Failure, ...] = ()
) -> Verdict:
    return Verdict(
        failures=failures,
        credential_status=StatusValue.VALID,
        issuer="https://thiqa.example",
        vct=vct,
        claims=claims if not failures else None,
        key_bound=True,
    )


# -- claims paths and purpose ----------------------------------------------------------------


def test_paths_are_member_names_normalised() -> None:
    assert check_paths([["given_name"], ["place_of_birth", "locality#ar"]]) == (
        ("given_name",),
        ("place_of_birth", "locality#ar"),
    )
    assert check_paths([["lieu_de_naissance_e\u0301"]]) == (("lieu_de_naissance_é",),)
    assert check_paths([]) == ()


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([["nationalities", None]], "array selectors"),
        ([["nationalities", 0]], "array selectors"),
        ([[]], "1 to 8"),
        ([["a"] * 9], "1 to 8"),
        (["given_name"], "array of claim names"),
        ([["given_name"], ["given_name"]], "repeats"),
        ([["caf\u00e9"], ["cafe\u0301"]], "repeats"),  # one name in NFC
        ([["_sd"]], "no claim can have"),
        ([["place_of_birth", "..."]], "no claim can have"),
        ([[""]], "no claim can have"),
        ([["a" * 129]], "no claim can have"),
        ([["given\nname"]], "no claim can have"),
        ([["status"]], "about the credential"),
        ([["cnf", "jwk"]], "about the credential"),
        ([[f"c{i}"] for i in range(33)], "at most 32"),
    ],
)
def test_bad_paths_are_refused(paths: Any, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        check_paths(paths)


def test_refusals_never_repeat_the_input() -> None:
    with pytest.raises(RequestError) as caught:
        check_paths([["secret-looking\x00value"]])
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "Vérifier votre identité",
        "التحقق من هويتك",
        "\u200fالتحقق\u200e ABC",  # RLM and LRM are how mixed Arabic/Latin text renders right
        "本人確認",
        "x" * 300,
    ],
)
def test_purpose_in_any_script(text: str) -> None:
    assert check_purpose(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "x" * 301,
        "a\nb",
        "a\tb",
        "pay \u202e001",
        "\u2066isolate\u2069",
        "\x7f",
        "\ud800",
        "line\u2028break",
        "para\u2029break",
    ],
)
def test_bad_purpose(text: str) -> None:
    with pytest.raises(RequestError):
        check_purpose(text)


def test_purpose_is_nfc_and_trimmed() -> None:
    assert check_purpose("  e\u0301  ") == "é"


# -- the request -----------------------------------------------------------------------------


def test_dcql_query_shape() -> None:
    assert dcql_query(VCT, [("given_name",), ("place_of_birth", "locality")]) == {
        "credentials": [
            {
                "id": "credential",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [VCT]},
                "claims": [{"path": ["given_name"]}, {"path": ["place_of_birth", "locality"]}],
            }
        ]
    }
    assert "claims" not in dcql_query(VCT, [])["credentials"][0]


def test_request_parameters_and_unsecured_request_object() -> None:
    made = request()
    params = made.parameters()
    assert params["client_id"] == "redirect_uri:" + made.response_uri
    assert params["response_type"] == "vp_token"
    assert params["response_mode"] == "direct_post"
    assert params["nonce"] == made.nonce
    assert params["state"] == made.state
    assert params["aud"] == "https://self-issued.me/v2"
    assert params["client_metadata"]["purpose"] == "فتح حساب"
    assert params["client_metadata"]["vp_formats_supported"]["dc+sd-jwt"] == {
        "sd-jwt_alg_values": ["ES256", "ES384", "EdDSA"],
        "kb-jwt_alg_values": ["ES256", "ES384", "EdDSA"],
    }
    # Times in whole seconds for the JWT; expiry rounded up, never early.
    assert (params["iat"], params["exp"]) == (1_800_000_000, 1_800_000_301)
    head, body, signature = made.request_object().split(".")
    assert json.loads(b64url_decode(head)) == {"alg": "none", "typ": "oauth-authz-req+jwt"}
    assert json.loads(b64url_decode(body)) == params
    assert signature == ""
    assert "فتح" in b64url_decode(body).decode("utf-8")  # UTF-8, not \u escapes


def test_wallet_uri_round_trips() -> None:
    made = request()
    uri = wallet_uri(made.client_id, "https://thiqa.example/presentation-requests/x?y=1&z")
    parts = urlsplit(uri)
    assert parts.scheme == "openid4vp"
    assert parse_qs(parts.query) == {
        "client_id": [made.client_id],
        "request_uri": ["https://thiqa.example/presentation-requests/x?y=1&z"],
    }


def test_secrets_are_fresh_128_bit_url_safe() -> None:
    values = {new_secret() for _ in range(1000)}
    assert len(values) == 1000
    assert all(len(v) == 22 and v.replace("-", "").replace("_", "").isalnum() for v in values)


# -- vp_token --------------------------------------------------------------------------------


def test_vp_token_holds_one_presentation_for_the_query() -> None:
    assert read_vp_token('{"credential": ["eyJ.x.y~d~kb"]}') == "eyJ.x.y~d~kb"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '"credential"',
        "{}",
        '{"credential": "eyJ~"}',  # drafts before 1.0 Final: a bare string
        '{"credential": []}',
        '{"credential": ["a~", "b~"]}',
        '{"credential": [7]}',
        '{"credential": ["a~"], "other": ["b~"]}',
        '{"credential": ["a~"], "credential": ["b~"]}',  # duplicate member
        '{"Credential": ["a~"]}',
    ],
)
def test_vp_token_of_another_shape_is_refused(text: str) -> None:
    with pytest.raises(VpTokenError):
        read_vp_token(text)


# -- selecting, minimising, judging ----------------------------------------------------------


def test_select() -> None:
    assert select(CLAIMS, ("place_of_birth", "locality")) == (True, "Fès")
    assert select(CLAIMS, ("place_of_birth",)) == (True, CLAIMS["place_of_birth"])
    assert select(CLAIMS, ("given_name", "x")) == (False, None)
    assert select(CLAIMS, ("nope",)) == (False, None)
    assert select({"a": None}, ("a",)) == (True, None)  # present, even if null


def test_minimise_keeps_only_requested_claims() -> None:
    kept = minimise(CLAIMS, [("given_name",), ("place_of_birth", "locality")])
    assert kept == {"given_name": "Amina", "place_of_birth": {"locality": "Fès"}}
    assert minimise(CLAIMS, [("place_of_birth",)]) == {"place_of_birth": CLAIMS["place_of_birth"]}
    # A path and a path inside it: the whole object was asked for.
    assert minimise(CLAIMS, [("place_of_birth", "country"), ("place_of_birth",)]) == {
        "place_of_birth": CLAIMS["place_of_birth"]
    }
    assert minimise(CLAIMS, [("place_of_birth",), ("place_of_birth", "country")]) == {
        "place_of_birth": CLAIMS["place_of_birth"]
    }
    assert minimise(CLAIMS, [("missing",)]) == {}
    assert minimise(CLAIMS, []) == {}


def test_minimise_copies() -> None:
    kept = minimise(CLAIMS, [("place_of_birth",)])
    kept["place_of_birth"]["locality"] = "changed"
    assert CLAIMS["place_of_birth"]["locality"] == "Fès"


def test_judge_valid_presentation_keeps_requested_claims_only() -> None:
    outcome = judge(verdict(), vct=VCT, paths=[("given_name",), ("place_of_birth", "locality")])
    assert outcome.valid
    assert outcome.body() == {
        "valid": True,
        "credential_status": "valid",
        "issuer": "https://thiqa.example",
        "vct": VCT,
        "claims": {"given_name": "Amina", "place_of_birth": {"locality": "Fès"}},
        "errors": [],
    }
    for value in ("الإدريسي", "1990-04-12", "فاس", "MA"):
        assert value not in json.dumps(outcome.body(), ensure_ascii=False)


def test_judge_other_type() -> None:
    outcome = judge(
        verdict(vct="https://thiqa.example/types/other"), vct=VCT, paths=[("given_name",)]
    )
    assert not outcome.valid
    assert [f.reason for f in outcome.failures] == [Reason.VCT_MISMATCH]
    assert outcome.claims is None


def test_judge_missing_claims_names_them() -> None:
    outcome = judge(
        verdict({"given_name": "Amina"}),
        vct=VCT,
        paths=[("given_name",), ("place_of_birth", "locality"), ("sex",)],
    )
    assert [f.reason for f in outcome.failures] == [Reason.MISSING_CLAIMS]
    assert outcome.failures[0].message.endswith("(place_of_birth.locality, sex)")
    assert outcome.claims is None


def test_judge_failed_verdict_passes_its_failures_and_no_claims() -> None:
    failed = verdict(failures=(Failure.of(Reason.REVOKED),))
    outcome = judge(failed, vct=VCT, paths=[("given_name",)])
    assert [f.reason for f in outcome.failures] == [Reason.REVOKED]
    assert outcome.claims is None
    assert outcome.body()["claims"] is None
    refused = Verdict(failures=(Failure.of(Reason.INVALID_SIGNATURE),))
    assert judge(refused, vct=VCT, paths=[]).body() == {
        "valid": False,
        "credential_status": None,
        "issuer": None,
        "vct": None,
        "claims": None,
        "errors": [
            {"code": "invalid_signature", "message": "The issuer's signature does not verify."}
        ],
    }


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (StatusValue.VALID, "valid"),
        (StatusValue.SUSPENDED, "suspended"),
        (StatusValue.INVALID, "revoked"),
    ],
)
def test_judge_status_names(status: StatusValue, name: str) -> None:
    made = Verdict(failures=(), credential_status=status, vct=VCT, claims={})
    assert judge(made, vct=VCT, paths=[]).credential_status == name


def test_wallet_error_codes_are_repeated_only_when_they_look_like_codes() -> None:
    assert wallet_error_code("access_denied") == "access_denied"
    assert wallet_error_code("<b>x</b>") is None
    assert wallet_error_code("a" * 65) is None
    assert (
        Outcome.refused(Reason.WALLET_ERROR, "access_denied")
        .body()["errors"][0]["message"]
        .endswith("(access_denied)")
    )
