"""OpenID4VCI core: key proof checks (each refusal with its code), request parsing and the
published documents. Real keys and signatures; the clock is a constant."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from service.core import jws
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.openid4vci import (
    CONFIGURATION_ID,
    PRE_AUTHORIZED_GRANT,
    PROOF_TYP,
    CredentialRequestError,
    authorization_server_metadata,
    check_proof,
    credential_offer,
    issuer_metadata,
    offer_uri,
    parse_credential_request,
    well_known_path,
)
from service.services.type_metadata import national_id_metadata

ISSUER = "https://id.example.ma"
NOW = 1_760_000_000
NONCE = "n" * 32


def make(
    key: SigningKey, *, typ: str = PROOF_TYP, header: dict[str, Any] | None = None, **claims: Any
) -> str:
    payload: dict[str, Any] = {"aud": ISSUER, "iat": NOW, "nonce": NONCE}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    extra = {"jwk": public_jwk(key.key)} if header is None else header
    return jws.encode(payload, key, typ=typ, include_kid=False, extra_header=extra)


def check(token: str, **overrides: Any) -> Any:
    options: dict[str, Any] = {"audience": ISSUER, "now": NOW, "clock_skew": 60, "max_age": 300}
    options.update(overrides)
    return check_proof(token, **options)


def refused(token: str, **overrides: Any) -> str:
    """The description of the ``invalid_proof`` the proof is refused with: each test compares
    it whole, so a proof refused by an earlier check than the one under test fails the test."""
    with pytest.raises(CredentialRequestError) as caught:
        check(token, **overrides)
    assert caught.value.error == "invalid_proof"
    assert caught.value.description.isascii()
    return caught.value.description


def not_a_proof(reason: str) -> str:
    return f"The proof is not an {PROOF_TYP} JWT ({reason})."


ONLY_JWK = "Only jwk proofs are supported (no kid, x5c or trust_chain)."
EXACTLY_ONE_KEY = "The proof header must carry exactly one of jwk, kid, x5c."
BAD_SIGNATURE = "The proof's signature does not verify with its jwk."
WRONG_AUDIENCE = "The proof's aud is not this credential issuer."
NO_IAT = "The proof has no numeric iat."


@pytest.fixture(params=["ES256", "EdDSA"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return generate_signing_key(request.param)


def test_a_good_proof_gives_its_key_and_nonce(key: SigningKey) -> None:
    result = check(make(key))
    assert result.nonce == NONCE
    assert result.jwk == public_jwk(key.key)
    assert result.key.alg == key.alg


def test_typ_is_explicit(key: SigningKey) -> None:
    # The media type spelling is the same type (RFC 7515 §4.1.9); anything else is not.
    assert check(make(key, typ="application/openid4vci-proof+jwt")).nonce == NONCE
    for typ in ("JWT", "kb+jwt", "dc+sd-jwt", "statuslist+jwt", "openid4vci-proof"):
        assert refused(make(key, typ=typ)) == not_a_proof("wrong_type")


def test_typ_missing(key: SigningKey) -> None:
    token = make(key)
    header = json.loads(b64url_decode(token.split(".")[0]))
    del header["typ"]
    forged = b64url_encode(json_dumps(header).encode()) + token[token.index(".") :]
    assert refused(forged) == not_a_proof("wrong_type")


def test_alg_none_and_hmac_are_refused(key: SigningKey) -> None:
    for alg in ("none", "HS256"):
        header = {"alg": alg, "typ": PROOF_TYP, "jwk": public_jwk(key.key)}
        payload = {"aud": ISSUER, "iat": NOW, "nonce": NONCE}
        encoded = ".".join(b64url_encode(json_dumps(p).encode()) for p in (header, payload))
        assert refused(encoded + ".") == not_a_proof("unsupported_algorithm")
        assert refused(encoded + "." + b64url_encode(b"x" * 32)) == not_a_proof(
            "unsupported_algorithm"
        )


def test_only_allowed_algorithms() -> None:
    es384 = generate_signing_key("ES384")
    assert refused(make(es384)) == "The proof's algorithm is not allowed."
    assert check(make(es384), algorithms=("ES384",)).key.alg == "ES384"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"kid": "did:example:123#1"}, ONLY_JWK),
        ({"x5c": ["MIIB"]}, ONLY_JWK),
        ({"trust_chain": ["x"], "kid": "k"}, EXACTLY_ONE_KEY),
        ({"kid": "k", "JWK": "x"}, ONLY_JWK),
        ({}, EXACTLY_ONE_KEY),
    ],
)
def test_key_must_be_a_jwk_and_only_that(
    key: SigningKey, header: dict[str, Any], message: str
) -> None:
    assert refused(make(key, header=header)) == message


def test_jwk_with_kid_is_two_key_parameters(key: SigningKey) -> None:
    both = {"jwk": public_jwk(key.key), "kid": "honest-key"}
    assert refused(make(key, header=both)) == EXACTLY_ONE_KEY
    with_x5c = {"jwk": public_jwk(key.key), "x5c": ["MIIB"]}
    assert refused(make(key, header=with_x5c)) == EXACTLY_ONE_KEY


def test_jwk_must_be_a_real_public_key() -> None:
    key = generate_signing_key("ES256")
    jwk = public_jwk(key.key)
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    off_curve = {**jwk, "y": b64url_encode(((y + 1) % 2**256).to_bytes(32, "big"))}
    for bad in (
        off_curve,
        {**jwk, "d": jwk["x"]},
        {"kty": "oct", "k": "AAAA"},
        {**jwk, "crv": "P-521"},
        "not an object",
        {**jwk, "alg": "EdDSA"},
    ):
        assert (
            refused(make(key, header={"jwk": bad})) == "The proof's jwk is not a valid public key."
        )


def test_signature_must_be_by_the_jwk() -> None:
    holder, other = generate_signing_key("ES256"), generate_signing_key("ES256")
    token = make(other, header={"jwk": public_jwk(holder.key)})
    assert refused(token) == BAD_SIGNATURE
    ed = generate_signing_key("EdDSA")
    # An Ed25519 key under an ES256 header: the algorithm must be the key's own.
    assert refused(make(holder, header={"jwk": public_jwk(ed.key)})) == (
        "The proof's algorithm does not match its key."
    )


def test_tampered_payload(key: SigningKey) -> None:
    token = make(key)
    head, _, signature = token.split(".")
    forged_payload = b64url_encode(
        json_dumps({"aud": ISSUER, "iat": NOW, "nonce": "m" * 32}).encode()
    )
    assert refused(f"{head}.{forged_payload}.{signature}") == BAD_SIGNATURE


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "https://other.example"}, WRONG_AUDIENCE),
        ({"aud": [ISSUER]}, WRONG_AUDIENCE),
        ({"aud": None}, WRONG_AUDIENCE),
        ({"iat": None}, NO_IAT),
        ({"iat": "1760000000"}, NO_IAT),
        ({"iat": True}, NO_IAT),
        ({"iat": 2**53}, NO_IAT),
        ({"iat": -1}, NO_IAT),
        ({"iat": NOW + 61}, "The proof's iat is in the future."),
        ({"iat": NOW - 361}, "The proof is too old."),
        ({"exp": NOW - 60}, "The proof has expired."),
        ({"exp": "tomorrow"}, "The proof's exp is not a NumericDate."),
        ({"nbf": NOW + 61}, "The proof is not valid yet."),
        ({"nonce": None}, "The proof has no nonce: get one from the nonce endpoint."),
        ({"nonce": 12345}, "The proof's nonce is not a string."),
    ],
)
def test_claims(key: SigningKey, claims: dict[str, Any], message: str) -> None:
    assert refused(make(key, **claims)) == message


def test_iat_window_edges(key: SigningKey) -> None:
    assert check(make(key, iat=NOW + 60)).nonce == NONCE
    assert check(make(key, iat=NOW - 360)).nonce == NONCE
    assert check(make(key, exp=NOW + 10)).nonce == NONCE
    assert check(make(key, exp=NOW - 59, nbf=NOW + 60)).nonce == NONCE


def test_garbage_is_an_invalid_proof() -> None:
    for token in ("", "a.b", "a.b.c", "x" * 100, "eyJ9.eyJ9.AA"):
        assert refused(token) == not_a_proof("malformed")


# -- credential requests ---------------------------------------------------------------------


def test_parse_request() -> None:
    parsed = parse_credential_request(
        {
            "credential_configuration_id": CONFIGURATION_ID,
            "proofs": {"jwt": ["a.b.c"]},
            "something_new": 1,
        }
    )
    assert (parsed.configuration_id, parsed.proof) == (CONFIGURATION_ID, "a.b.c")


NOT_AN_OBJECT = "The body must be a JSON object."
NO_CONFIGURATION = "credential_configuration_id is required."
ONE_PROOF_TYPE = "proofs must hold exactly one proof type, jwt."
JWT_ARRAY = "proofs.jwt must be a non-empty array of JWTs."
C = CONFIGURATION_ID


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        (None, "invalid_credential_request", NOT_AN_OBJECT),
        ([], "invalid_credential_request", NOT_AN_OBJECT),
        ({}, "invalid_credential_request", NO_CONFIGURATION),
        ({"credential_configuration_id": 7}, "invalid_credential_request", NO_CONFIGURATION),
        (
            {"credential_configuration_id": "UniversityDegree"},
            "unknown_credential_configuration",
            "This issuer offers thiqa_national_id only.",
        ),
        (
            {"credential_identifier": "x", "credential_configuration_id": C},
            "invalid_credential_request",
            "credential_identifier is not used: no authorization_details were granted.",
        ),
        (
            {"credential_configuration_id": C, "credential_response_encryption": {}},
            "invalid_encryption_parameters",
            "This issuer does not encrypt credential responses.",
        ),
        (
            {"credential_configuration_id": C},
            "invalid_proof",
            "proofs is required (a key proof of type jwt).",
        ),
        ({"credential_configuration_id": C, "proofs": []}, "invalid_proof", ONE_PROOF_TYPE),
        (
            {"credential_configuration_id": C, "proofs": {"jwt": ["a"], "attestation": ["b"]}},
            "invalid_proof",
            ONE_PROOF_TYPE,
        ),
        (
            {"credential_configuration_id": C, "proofs": {"jwt": "a.b.c"}},
            "invalid_proof",
            JWT_ARRAY,
        ),
        ({"credential_configuration_id": C, "proofs": {"jwt": [1]}}, "invalid_proof", JWT_ARRAY),
        (
            {"credential_configuration_id": C, "proofs": {"jwt": ["a", "b"]}},
            "invalid_proof",
            "This issuer issues one credential per request: send one proof.",
        ),
    ],
)
def test_parse_request_errors(body: Any, error: str, description: str) -> None:
    with pytest.raises(CredentialRequestError) as caught:
        parse_credential_request(body)
    assert (caught.value.error, caught.value.description) == (error, description)


# -- documents -------------------------------------------------------------------------------


def test_offer_document_and_uri() -> None:
    offer = credential_offer(issuer=ISSUER, pre_authorized_code="code", tx_code_length=6)
    grant = offer["grants"][PRE_AUTHORIZED_GRANT]
    assert grant["pre-authorized_code"] == "code"
    assert grant["tx_code"]["length"] == 6
    assert grant["tx_code"]["input_mode"] == "numeric"
    assert len(grant["tx_code"]["description"]) <= 300
    assert (
        "tx_code"
        not in credential_offer(issuer=ISSUER, pre_authorized_code="code", tx_code_length=None)[
            "grants"
        ][PRE_AUTHORIZED_GRANT]
    )
    reference = f"{ISSUER}/credential-offers/abc?x=1&y=2"
    link = offer_uri(reference)
    assert link.startswith("openid-credential-offer://?credential_offer_uri=https%3A%2F%2F")
    assert parse_qs(urlsplit(link).query) == {"credential_offer_uri": [reference]}


def test_issuer_metadata_uses_the_type_metadata() -> None:
    vct = f"{ISSUER}/types/national-id"
    metadata = issuer_metadata(
        issuer=ISSUER,
        vct=vct,
        signing_algs=["EdDSA", "EdDSA"],
        type_metadata=national_id_metadata(vct),
    )
    config = metadata["credential_configurations_supported"][CONFIGURATION_ID]
    assert config["credential_signing_alg_values_supported"] == ["EdDSA"]
    display = config["credential_metadata"]["display"]
    assert {d["locale"] for d in display} == {"ar", "fr", "en"}
    paths = [c["path"] for c in config["credential_metadata"]["claims"]]
    assert ["place_of_birth", "locality#ar"] in paths
    assert len(paths) == len({json.dumps(p) for p in paths})  # §B.2: no claim twice
    mandatory = {
        c["path"][0] for c in config["credential_metadata"]["claims"] if c.get("mandatory")
    }
    assert mandatory == {"given_name", "family_name", "birthdate", "national_id"}


def test_authorization_server_metadata() -> None:
    metadata = authorization_server_metadata(issuer=ISSUER)
    assert metadata["token_endpoint"] == f"{ISSUER}/token"
    assert metadata["pre-authorized_grant_anonymous_access_supported"] is True


def test_well_known_path() -> None:
    assert well_known_path("openid-credential-issuer", ISSUER) == (
        "/.well-known/openid-credential-issuer"
    )
    assert well_known_path("openid-credential-issuer", f"{ISSUER}/tenant/") == (
        "/.well-known/openid-credential-issuer/tenant"
    )
