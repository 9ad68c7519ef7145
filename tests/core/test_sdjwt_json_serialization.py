"""The reference vectors in JWS JSON serialization (RFC 9901 §8), flattened and general:
converted to the compact form, they verify to exactly ``verified_contents.json``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from service.core import jws
from service.core.keys import parse_public_jwk
from service.core.reasons import Reason, VerificationFailure
from service.core.sdjwt import digest, disclose, from_json_serialization, split

from .helpers import VECTORS, signature_holds

ROOT = VECTORS / "sd-jwt"
CASES = ["json_serialization_flattened", "json_serialization_general"]
SETTINGS = yaml.safe_load((ROOT / "settings.yml").read_text("utf-8"))


def _document(case: str) -> dict[str, Any]:
    # The file holds the JSON document as a JSON string.
    text = json.loads((ROOT / case / "sd_jwt_presentation.json").read_text("utf-8"))
    document: dict[str, Any] = json.loads(text)
    return document


def _issuer_key(case: str) -> Any:
    # Both cases are signed (first) by settings.yml's issuer key; the general case's
    # specification.yml lists it again as "issuer-key-1" beside a second key.
    jwk = {k: v for k, v in SETTINGS["key_settings"]["issuer_keys"][0].items() if k != "d"}
    return parse_public_jwk(jwk)


@pytest.mark.parametrize("case", CASES)
def test_json_serialization_verifies_to_the_expected_claims(case: str) -> None:
    compact = from_json_serialization(_document(case))
    parts = split(compact)
    token = jws.parse(parts.issuer_jwt, typ=frozenset({"example+sd-jwt"}))
    assert signature_holds(_issuer_key(case), token.signature, token.signing_input) is True
    claims = disclose(token.payload, parts.disclosures).claims
    expected = json.loads((ROOT / case / "verified_contents.json").read_text("utf-8"))
    assert claims == expected


@pytest.mark.parametrize("case", CASES)
def test_json_serialization_key_binding_covers_the_compact_form(case: str) -> None:
    parts = split(from_json_serialization(_document(case)))
    assert parts.kb_jwt is not None
    kb = jws.parse(parts.kb_jwt, typ=frozenset({"kb+jwt"}))
    holder = {k: v for k, v in SETTINGS["key_settings"]["holder_key"].items() if k != "d"}
    assert signature_holds(parse_public_jwk(holder), kb.signature, kb.signing_input) is True
    assert kb.payload["sd_hash"] == digest(parts.hashed_part)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"payload": 1},
        {"payload": "e30", "signatures": []},
        {"payload": "e30", "protected": "e30"},
        {"payload": "e30", "protected": "e30", "signature": "AA", "header": {"disclosures": "x"}},
        {"payload": "e30", "protected": "e30", "signature": "AA", "header": {"kb_jwt": 5}},
        {
            "payload": "e30",
            "signatures": [
                {"protected": "e30", "signature": "AA"},
                {"protected": "e30", "signature": "AA", "header": {"disclosures": ["WyJhIl0"]}},
            ],
        },
    ],
)
def test_malformed_json_serialization_is_refused(document: Any) -> None:
    with pytest.raises(VerificationFailure) as caught:
        from_json_serialization(document)
    assert caught.value.reason is Reason.MALFORMED
