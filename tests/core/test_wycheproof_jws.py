"""Wycheproof JSON Web Signature and JSON Web Key vectors through Thiqa's JWS reader.

Each vector is a compact JWS (or, in a few, a JSON serialization), a key set and a verdict.
Thiqa reads them the way it reads a credential's issuer JWT, in the order of
``service.core.verify``: the key set goes through the trust-list loader
(``service.keyring.trust_list.parse_trust_list``, which parses every key with
``parse_public_jwk`` and refuses duplicate kids), the token through ``jws.decode_compact``
(the splitting and strict base64url/JSON decoding that ``jws.parse`` runs first), then the
algorithm allow-list, the key
chosen by ``kid``, the key's one algorithm against the header's, and ``VerificationKey.verify``.

What this does not cover, and why: ``jws.parse`` also requires a ``typ`` and a JSON-object
payload. No Wycheproof vector has either (the payloads are bytes such as ``foo``), so each is
also run through ``jws.parse`` itself and must be refused there; the typ and payload rules are
tested in ``test_jws.py``. parse's checks on ``crit``, ``b64`` and the shape of ``kid`` are not
applied above; the test asserts that no vector carries ``crit`` or ``b64`` and that every kid
is one parse would accept, so leaving them out changes no outcome.

A vector counts as "supported" when every key of its set is of a kind Thiqa verifies with
(EC P-256 for ES256, EC P-384 for ES384, OKP Ed25519 for EdDSA): those must be accepted
exactly when Wycheproof says "valid". Every other vector (RSA: RS*/PS*, oct: HS* and AES
keys, EC P-521, mixed sets) must be rejected, valid or not, and is counted apart. The two
files have no JWE vector and no "acceptable" result; both facts are asserted.

Counts at the time of writing: json_web_signature_test.json, 401 vectors: supported 41
(2 valid accepted, 39 invalid rejected; all ES256, the files have no ES384 or EdDSA vector),
unsupported 360 (all rejected, 44 of them "valid"). json_web_key_test.json, 26 vectors:
supported 5 (all invalid, rejected), unsupported 21 (all rejected, 5 of them "valid").
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from service.core import jws
from service.core.keys import ALGORITHMS
from service.core.reasons import VerificationFailure
from service.keyring.trust_list import TrustListError, parse_trust_list

from .helpers import VECTORS, signature_holds

WYCHEPROOF = VECTORS / "wycheproof"
ISSUER = "https://wycheproof.example"
#: Key kinds Thiqa verifies with: (kty, crv).
SUPPORTED_KEYS = frozenset({("EC", "P-256"), ("EC", "P-384"), ("OKP", "Ed25519")})
CREDENTIAL_TYPS = frozenset({"dc+sd-jwt", "vc+sd-jwt"})


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((WYCHEPROOF / name).read_text(encoding="utf-8"))
    return document


def _key_set(group: dict[str, Any]) -> dict[str, Any]:
    """The group's keys as a JWKS: the public set where there is one, else the private set
    (HMAC and AES groups have only that; Thiqa must refuse it for its secret members)."""
    keys = group.get("public") or group["private"]
    return keys if "keys" in keys else {"keys": [keys]}


def _supported(group: dict[str, Any]) -> bool:
    return all((k.get("kty"), k.get("crv")) in SUPPORTED_KEYS for k in _key_set(group)["keys"])


def _reads(token: str, group: dict[str, Any]) -> str:
    """Thiqa's verdict on ``token`` with the group's keys: "accepted" or why not."""
    try:
        trusted = parse_trust_list(
            {
                "issuers": [
                    {
                        "issuer": ISSUER,
                        "credential_types": [f"{ISSUER}/type"],
                        "jwks": _key_set(group),
                    }
                ]
            }
        )[ISSUER]
    except TrustListError:
        return "key set refused"
    try:
        header, _payload, signing_input, signature = jws.decode_compact(token)
    except VerificationFailure as failure:
        return failure.reason.value
    # parse's remaining header checks, shown not to matter for these vectors.
    assert "crit" not in header
    assert "b64" not in header
    kid = header.get("kid")
    assert kid is None or (
        isinstance(kid, str) and 0 < len(kid) <= jws.MAX_KID_LENGTH and kid.isprintable()
    )
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        return "unsupported_algorithm"
    key = trusted.keys.get(kid) if kid is not None else None
    if key is None:
        return "unknown_key"
    if key.alg != alg:
        return "unsupported_algorithm"
    if not signature_holds(key, signature, signing_input):
        return "invalid_signature"
    return "accepted"


def _run(document: dict[str, Any]) -> tuple[Counter[tuple[str, str, bool]], Counter[str]]:
    """Outcomes as (supported|unsupported, valid|invalid, accepted), plus why Thiqa
    refused each vector; asserts every expectation and lists all mismatches at once."""
    outcomes: Counter[tuple[str, str, bool]] = Counter()
    reasons: Counter[str] = Counter()
    wrong: list[tuple[int, str, str, str]] = []
    for group in document["testGroups"]:
        assert group["type"] in ("JsonWebSignature", "JsonWebKey")  # no JWE in these files
        supported = _supported(group)
        for test in group["tests"]:
            assert test["result"] in ("valid", "invalid")  # no "acceptable" here
            token = test["jws"]
            assert isinstance(token, str)
            verdict = _reads(token, group)
            accepted = verdict == "accepted"
            reasons[verdict] += 1
            outcomes[("supported" if supported else "unsupported", test["result"], accepted)] += 1
            expected = supported and test["result"] == "valid"
            if accepted is not expected:
                wrong.append((test["tcId"], group["comment"], test["comment"], verdict))
            # And no vector gets past the typed reader every verification starts with.
            with pytest.raises(VerificationFailure):
                jws.parse(token, typ=CREDENTIAL_TYPS)
    assert not wrong, wrong
    assert sum(outcomes.values()) == document["numberOfTests"]
    return outcomes, reasons


def test_json_web_signature_vectors() -> None:
    outcomes, reasons = _run(_load("json_web_signature_test.json"))
    assert outcomes == Counter(
        {
            ("supported", "valid", True): 2,
            ("supported", "invalid", False): 39,
            ("unsupported", "valid", False): 44,
            ("unsupported", "invalid", False): 316,
        }
    )
    assert reasons["accepted"] == 2


def test_json_web_key_vectors() -> None:
    outcomes, reasons = _run(_load("json_web_key_test.json"))
    assert outcomes == Counter(
        {
            ("supported", "invalid", False): 5,
            ("unsupported", "valid", False): 5,
            ("unsupported", "invalid", False): 16,
        }
    )
    assert reasons["accepted"] == 0


@pytest.mark.parametrize(
    ("name", "tc_id", "reason"),
    [
        # The classic attacks each have their own vector; each is refused for its own reason.
        ("json_web_signature_test.json", 16, "key set refused"),  # alg none, HMAC set
        ("json_web_signature_test.json", 31, "unsupported_algorithm"),  # HS256 with EC key
        ("json_web_signature_test.json", 32, "invalid_signature"),  # attacker's embedded jwk
        ("json_web_signature_test.json", 354, "key set refused"),  # EC key with use "enc"
        ("json_web_signature_test.json", 356, "key set refused"),  # key_ops ["encrypt"]
        ("json_web_signature_test.json", 386, "invalid_signature"),  # r = s = 0
        ("json_web_signature_test.json", 401, "invalid_signature"),  # r = s = n
        ("json_web_key_test.json", 19, "key set refused"),  # alg ES521 on a P-256 key
        ("json_web_key_test.json", 22, "key set refused"),  # point not on the curve
        ("json_web_key_test.json", 23, "key set refused"),  # P-256 point labelled P-384
    ],
)
def test_named_attack_vectors(name: str, tc_id: int, reason: str) -> None:
    document = _load(name)
    ((group, test),) = [
        (g, t) for g in document["testGroups"] for t in g["tests"] if t["tcId"] == tc_id
    ]
    assert test["result"] == "invalid"
    assert _reads(test["jws"], group) == reason
