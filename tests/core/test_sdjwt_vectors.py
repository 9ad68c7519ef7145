"""The SD-JWT reference implementation's test cases (openwallet-foundation-labs/sd-jwt-python).

These vectors are plain SD-JWT, not SD-JWT VC: the issuer JWT's ``typ`` is
``example+sd-jwt``, there is no ``vct``, no ``status`` and no ``kid`` (``header_mod`` has
``"kid": 42``, a number). Through Thiqa's full pipeline they are therefore refused, and the
tests pin exactly why: ``wrong_type`` first; with a policy that admits their ``typ``,
``unknown_key`` (Thiqa chooses the issuer key by ``kid`` and never guesses one); for
``header_mod``, ``malformed`` (RFC 7515 §4.1.4: ``kid`` is a string).

The layer beneath the pipeline is then checked on every case: split, parse with the ``typ``
the vectors carry, verify the issuer signature with the key from settings.yml, apply the
disclosures, and compare with ``verified_contents.json`` exactly; the key-binding JWTs are
checked against the holder key, the nonce and the verifier of settings.yml.

The ``json_serialization_*`` cases use the JWS JSON serialization of SD-JWT (RFC 9901 §8);
they are checked in ``test_sdjwt_json_serialization.py`` after conversion to the compact form.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from service.core import jws
from service.core.encoding import b64url_decode, json_loads
from service.core.keys import VerificationKey, parse_public_jwk
from service.core.reasons import Reason, VerificationFailure
from service.core.sdjwt import digest, disclose, split
from service.core.status_list import StatusValue
from service.core.verify import Expectations, Inspection, Policy, TrustedIssuer, conclude, inspect

from .helpers import VECTORS, signature_holds

ROOT = VECTORS / "sd-jwt"
SETTINGS = yaml.safe_load((ROOT / "settings.yml").read_text("utf-8"))
ISSUER = SETTINGS["identifiers"]["issuer"]
VERIFIER = SETTINGS["identifiers"]["verifier"]
NONCE = SETTINGS["key_binding_nonce"]
NOW = SETTINGS["iat"] + 1
VECTOR_TYP = "example+sd-jwt"

ALL_CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
# Compact serialization only: the JSON serialization cases have no sd_jwt_presentation.txt.
CASES = [name for name in ALL_CASES if not name.startswith("json_serialization")]
ENVELOPE = ("iss", "iat", "exp", "cnf", "_sd_alg")


def public(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "d"}


ISSUER_KEY = parse_public_jwk(public(SETTINGS["key_settings"]["issuer_keys"][0]))
HOLDER_JWK = public(SETTINGS["key_settings"]["holder_key"])


def read(case: str, name: str) -> str:
    return (ROOT / case / name).read_text("utf-8").strip()


def verified_contents(case: str) -> dict[str, Any]:
    contents: dict[str, Any] = json.loads(read(case, "verified_contents.json"))
    return contents


def is_bound(case: str) -> bool:
    return split(read(case, "sd_jwt_presentation.txt")).kb_jwt is not None


class VectorPolicy(Policy):
    """The default policy, except that it admits the vectors' ``typ``."""

    @property
    def credential_typs(self) -> frozenset[str]:
        return frozenset({VECTOR_TYP})


def run(case: str, policy: Policy) -> Inspection:
    bound = is_bound(case)
    return inspect(
        read(case, "sd_jwt_presentation.txt"),
        trusted={
            ISSUER: TrustedIssuer(
                identifier=ISSUER,
                keys={ISSUER_KEY.kid: ISSUER_KEY},
                types=frozenset(),  # the vectors carry no vct
            )
        },
        policy=policy,
        expect=Expectations(nonce=NONCE, audience=VERIFIER) if bound else Expectations(),
        now=NOW,
    )


def test_case_list() -> None:
    assert len(CASES) == 15
    assert set(ALL_CASES) - set(CASES) == {
        "json_serialization_flattened",
        "json_serialization_general",
    }
    assert {c for c in CASES if is_bound(c)} == {"key_binding", "header_mod"}


def test_settings_issuer_key_is_the_one_in_the_vectors() -> None:
    assert ISSUER == "https://example.com/issuer"
    assert ISSUER_KEY.alg == "ES256"
    for case in CASES:
        assert json.loads(read(case, "sd_jwt_payload.json"))["iss"] == ISSUER


# --- the full pipeline: refused, for exactly the documented reason -------------------------


@pytest.mark.parametrize("case", CASES)
def test_pipeline_refuses_plain_sd_jwt_typ(case: str) -> None:
    inspection = run(case, Policy())
    assert {f.reason for f in inspection.failures} == {Reason.WRONG_TYPE}
    assert not conclude(inspection, StatusValue.VALID).valid


@pytest.mark.parametrize("case", CASES)
def test_pipeline_admitting_the_typ_still_needs_a_kid(case: str) -> None:
    inspection = run(case, VectorPolicy())
    expected = Reason.MALFORMED if case == "header_mod" else Reason.UNKNOWN_KEY
    assert {f.reason for f in inspection.failures} == {expected}
    assert not inspection.signature_verified


# --- the layer beneath: signature, disclosures, key binding ----------------------------------


def _issuer_jwt(case: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input, signature; header_mod's int kid bypasses jws.parse."""
    text = split(read(case, "sd_jwt_presentation.txt")).issuer_jwt
    if case == "header_mod":
        with pytest.raises(VerificationFailure) as caught:
            jws.parse(text, typ=frozenset({VECTOR_TYP}))
        assert caught.value.reason is Reason.MALFORMED
        head, body, sig = text.split(".")
        return (
            json_loads(b64url_decode(head)),
            json_loads(b64url_decode(body)),
            f"{head}.{body}".encode("ascii"),
            b64url_decode(sig),
        )
    token = jws.parse(text, typ=frozenset({VECTOR_TYP}))
    return dict(token.header), dict(token.payload), token.signing_input, token.signature


@pytest.mark.parametrize("case", CASES)
def test_issuer_signature_verifies(case: str) -> None:
    header, payload, signing_input, signature = _issuer_jwt(case)
    assert header["alg"] == "ES256"
    assert header["typ"] == VECTOR_TYP
    assert payload == json.loads(read(case, "sd_jwt_payload.json"))
    assert signature_holds(ISSUER_KEY, signature, signing_input) is True
    assert signature_holds(ISSUER_KEY, signature, signing_input + b"x") is False


@pytest.mark.parametrize("case", CASES)
def test_disclosed_claims_equal_verified_contents(case: str) -> None:
    _, payload, _, _ = _issuer_jwt(case)
    parts = split(read(case, "sd_jwt_presentation.txt"))
    claims = disclose(payload, parts.disclosures).claims
    expected = verified_contents(case)
    # verified_contents.json holds iss, iat, exp (and cnf when bound) beside the user claims;
    # disclose drops the top-level _sd_alg, so the two compare whole ...
    assert claims == expected
    # ... and without the envelope as well.
    strip = {k: v for k, v in claims.items() if k not in ENVELOPE}
    assert strip == {k: v for k, v in expected.items() if k not in ENVELOPE}


@pytest.mark.parametrize("case", CASES)
def test_issuance_discloses_every_user_claim(case: str) -> None:
    _, payload, _, _ = _issuer_jwt(case)
    issued = split(read(case, "sd_jwt_issuance.txt"))
    presented = split(read(case, "sd_jwt_presentation.txt"))
    assert set(presented.disclosures) <= set(issued.disclosures)
    claims = disclose(payload, issued.disclosures).claims
    user = {k: v for k, v in claims.items() if k not in ENVELOPE}
    assert user == json.loads(read(case, "user_claims.json"))


@pytest.mark.parametrize("case", CASES)
def test_a_repeated_or_unreferenced_disclosure_is_refused(case: str) -> None:
    _, payload, _, _ = _issuer_jwt(case)
    parts = split(read(case, "sd_jwt_presentation.txt"))
    with pytest.raises(VerificationFailure) as caught:
        disclose(payload, [*parts.disclosures, *parts.disclosures[:1]] or ["WyJhIiwiYiJd"])
    assert caught.value.reason is Reason.INVALID_DISCLOSURE


@pytest.mark.parametrize("case", [c for c in CASES if is_bound(c)])
def test_key_binding_jwt_binds_to_the_holder_nonce_and_verifier(case: str) -> None:
    _, payload, _, _ = _issuer_jwt(case)
    parts = split(read(case, "sd_jwt_presentation.txt"))
    assert payload["cnf"] == {"jwk": HOLDER_JWK}
    holder: VerificationKey = parse_public_jwk(payload["cnf"]["jwk"])
    assert parts.kb_jwt is not None
    kb = jws.parse(parts.kb_jwt, typ=frozenset({"kb+jwt"}))
    assert kb.alg == holder.alg == "ES256"
    assert signature_holds(holder, kb.signature, kb.signing_input) is True
    assert signature_holds(ISSUER_KEY, kb.signature, kb.signing_input) is False
    assert kb.payload["sd_hash"] == digest(parts.hashed_part)
    assert kb.payload["nonce"] == NONCE
    assert kb.payload["aud"] == VERIFIER
    # The KB-JWTs were made later than settings.yml's iat (1795929558 vs 1683000000): a
    # verifier checking at NOW would see a KB-JWT from the future; at its own iat it is fresh.
    assert kb.payload["iat"] > NOW + Policy().clock_skew


def test_header_mod_kid_is_a_number() -> None:
    header, _, _, _ = _issuer_jwt("header_mod")
    assert header["kid"] == 42
