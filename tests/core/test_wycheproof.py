"""Wycheproof (C2SP/wycheproof) signature vectors against VerificationKey.verify.

Every test group's key is loaded the way Thiqa loads keys, through ``parse_public_jwk``: from
the group's JWK where the file gives one, otherwise from a JWK written from the uncompressed
point (the groups without a JWK in the ECDSA file), and cross-checked against the
uncompressed point or raw key bytes. ``verify`` must return True exactly for "valid" and
False for "invalid". Neither file used here has an "acceptable" vector; if a future copy has
some, the test records Thiqa's behaviour for them: all are rejected (Thiqa is strict: an
"acceptable" vector is a legacy or edge encoding that a strict verifier may refuse).

Counts at the time of writing: ECDSA P-256 (P1363): 262 vectors in 112 groups, 173 valid
accepted, 89 invalid rejected. Ed25519: 151 vectors in 78 groups, 88 valid accepted, 63
invalid rejected.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from service.core.encoding import b64url_encode
from service.core.keys import VerificationKey, parse_public_jwk

from .helpers import VECTORS, signature_holds

WYCHEPROOF = VECTORS / "wycheproof"


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((WYCHEPROOF / name).read_text(encoding="utf-8"))
    return document


def _ecdsa_key(group: dict[str, Any]) -> VerificationKey:
    public = group["publicKey"]
    point = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(public["uncompressed"])
    )
    numbers = point.public_numbers()
    jwk = group.get("publicKeyJwk") or {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }
    key = parse_public_jwk(jwk)
    assert key.alg == "ES256"
    assert isinstance(key.key, ec.EllipticCurvePublicKey)
    assert key.key.public_numbers() == numbers
    return key


def _eddsa_key(group: dict[str, Any]) -> VerificationKey:
    key = parse_public_jwk(group["publicKeyJwk"])
    assert key.alg == "EdDSA"
    assert isinstance(key.key, ed25519.Ed25519PublicKey)
    assert key.key.public_bytes_raw() == bytes.fromhex(group["publicKey"]["pk"])
    return key


def _run(document: dict[str, Any], load_key: Any) -> Counter[tuple[str, bool]]:
    outcomes: Counter[tuple[str, bool]] = Counter()
    wrong: list[tuple[int, str, str, bool]] = []
    for group in document["testGroups"]:
        key = load_key(group)
        for test in group["tests"]:
            accepted = signature_holds(key, bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"]))
            outcomes[(test["result"], accepted)] += 1
            expected = {"valid": True, "invalid": False, "acceptable": False}[test["result"]]
            if accepted is not expected:
                wrong.append((test["tcId"], test["comment"], test["result"], accepted))
    assert not wrong, wrong
    assert sum(outcomes.values()) == document["numberOfTests"]
    return outcomes


def test_ecdsa_p256_p1363_vectors() -> None:
    document = _load("ecdsa_secp256r1_sha256_p1363_test.json")
    assert document["algorithm"] == "ECDSA"
    outcomes = _run(document, _ecdsa_key)
    assert outcomes[("valid", True)] > 0
    assert outcomes[("invalid", False)] > 0
    assert outcomes == Counter({("valid", True): 173, ("invalid", False): 89})


def test_ed25519_vectors() -> None:
    document = _load("ed25519_test.json")
    assert document["algorithm"] == "EDDSA"
    outcomes = _run(document, _eddsa_key)
    assert outcomes[("valid", True)] > 0
    assert outcomes[("invalid", False)] > 0
    assert outcomes == Counter({("valid", True): 88, ("invalid", False): 63})


@pytest.mark.parametrize(
    "flag", ["InvalidSignature", "RangeCheck", "ModifiedInteger", "SignatureSize"]
)
def test_ecdsa_attack_families_are_present_and_rejected(flag: str) -> None:
    # Guards the copied file: the families the strict checks exist for must be in it.
    document = _load("ecdsa_secp256r1_sha256_p1363_test.json")
    found = 0
    for group in document["testGroups"]:
        key = _ecdsa_key(group)
        for test in group["tests"]:
            if flag in test["flags"] and test["result"] == "invalid":
                found += 1
                assert (
                    signature_holds(key, bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"]))
                    is False
                )
    assert found > 0
