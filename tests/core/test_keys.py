"""Keys bound to one algorithm, strict public JWKs, RFC 7638 thumbprints, strict signatures."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from service.core.encoding import b64url_decode, b64url_encode
from service.core.keys import (
    ALGORITHMS,
    InvalidSignatureError,
    JWKError,
    SigningKey,
    VerificationKey,
    algorithm_for,
    generate_signing_key,
    jwk_thumbprint,
    parse_public_jwk,
    public_jwk,
)

from .helpers import signature_holds

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)

# RFC 7517 Appendix A.1, the example P-256 public key.
RFC7517_EC = {
    "kty": "EC",
    "crv": "P-256",
    "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
    "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
    "use": "enc",
    "kid": "1",
}
# The same key as its owner would publish it for signatures: marked "enc" it is refused.
RFC7517_EC_SIG = {**RFC7517_EC, "use": "sig"}
# RFC 8037 Appendix A.2/A.3: the Ed25519 public key and its RFC 7638 thumbprint.
RFC8037_OKP = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ0aGlxYSJ9"


def coordinate(n: int, size: int = 32) -> str:
    return b64url_encode(n.to_bytes(size, "big"))


# --- thumbprints -------------------------------------------------------------------------


def test_ec_thumbprint_is_sha256_of_the_canonical_required_members() -> None:
    # RFC 7638 §3: required members only, lexicographic order, no white space. Written out
    # by hand here so that the test does not reuse the code's own serialisation.
    canonical = (
        '{"crv":"P-256","kty":"EC",'
        '"x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",'
        '"y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}'
    )
    expected = b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())
    assert jwk_thumbprint(RFC7517_EC) == expected
    assert parse_public_jwk(RFC7517_EC_SIG).kid == expected


def test_ed25519_thumbprint_matches_rfc8037_appendix_a3() -> None:
    assert jwk_thumbprint(RFC8037_OKP) == RFC8037_THUMBPRINT
    assert parse_public_jwk(RFC8037_OKP).kid == RFC8037_THUMBPRINT


def test_thumbprint_ignores_optional_members_and_member_order() -> None:
    reordered = {"y": RFC7517_EC["y"], "x": RFC7517_EC["x"], "kty": "EC", "crv": "P-256"}
    decorated = {**RFC7517_EC, "alg": "ES256", "use": "sig", "key_ops": ["verify"]}
    assert jwk_thumbprint(reordered) == jwk_thumbprint(decorated) == jwk_thumbprint(RFC7517_EC)


def test_thumbprint_changes_with_the_key() -> None:
    a = generate_signing_key("ES256").verification_key().public_jwk()
    b = generate_signing_key("ES256").verification_key().public_jwk()
    assert jwk_thumbprint(a) != jwk_thumbprint(b)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
def test_generated_key_kid_is_its_thumbprint(alg: str) -> None:
    key = generate_signing_key(alg)
    assert key.alg == alg
    assert key.kid == jwk_thumbprint(public_jwk(key.key))
    assert key.verification_key().kid == key.kid


# --- parsing public JWKs -------------------------------------------------------------------


def test_parses_rfc7517_ec_key_as_es256() -> None:
    key = parse_public_jwk(RFC7517_EC_SIG)
    assert key.alg == "ES256"
    assert isinstance(key.key, ec.EllipticCurvePublicKey)
    numbers = key.key.public_numbers()
    assert numbers.x == int.from_bytes(b64url_decode(RFC7517_EC["x"]), "big")
    assert numbers.y == int.from_bytes(b64url_decode(RFC7517_EC["y"]), "big")


@pytest.mark.parametrize(
    "marking",
    [
        {"use": "enc"},
        {"use": "SIG"},
        {"key_ops": ["encrypt"]},
        {"key_ops": ["sign"]},
        {"key_ops": "verify"},
    ],
)
def test_key_not_marked_for_verifying_is_refused(marking: dict[str, Any]) -> None:
    # RFC 7517 §4.2-4.3 (Wycheproof rejectWrongUse / rejectWrongKeyOps).
    with pytest.raises(JWKError, match=r"use|key_ops"):
        parse_public_jwk({**RFC7517_EC_SIG, **marking})
    assert parse_public_jwk({**RFC7517_EC_SIG, "key_ops": ["verify"]}).alg == "ES256"


def test_parses_rfc8037_okp_key_as_eddsa() -> None:
    key = parse_public_jwk(RFC8037_OKP)
    assert key.alg == "EdDSA"
    assert isinstance(key.key, ed25519.Ed25519PublicKey)
    assert key.key.public_bytes_raw() == b64url_decode(RFC8037_OKP["x"])


def test_explicit_kid_overrides_thumbprint() -> None:
    assert parse_public_jwk(RFC8037_OKP, kid="k-1").kid == "k-1"


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
def test_public_jwk_round_trips_through_parse(alg: str) -> None:
    original = generate_signing_key(alg).verification_key()
    jwk = original.public_jwk()
    assert jwk["kid"] == original.kid
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    parsed = parse_public_jwk(jwk)
    assert parsed.kid == original.kid
    assert parsed.alg == alg
    assert public_jwk(parsed.key) == public_jwk(original.key)


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
def test_accepts_matching_alg_member(alg: str) -> None:
    jwk = public_jwk(generate_signing_key(alg).key)
    assert parse_public_jwk({**jwk, "alg": alg}).alg == alg


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_rejects_private_key_members(member: str) -> None:
    jwk = {**RFC7517_EC, member: "AAAA"}
    with pytest.raises(JWKError, match="private"):
        parse_public_jwk(jwk)


def test_rejects_a_real_private_jwk() -> None:
    key = generate_signing_key("ES256")
    assert isinstance(key.key, ec.EllipticCurvePrivateKey)
    numbers = key.key.private_numbers()
    jwk = {**public_jwk(key.key), "d": coordinate(numbers.private_value)}
    with pytest.raises(JWKError, match="private"):
        parse_public_jwk(jwk)
    okp = {**RFC8037_OKP, "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}
    with pytest.raises(JWKError, match="private"):
        parse_public_jwk(okp)


@pytest.mark.parametrize(
    ("member", "raw_size"), [("x", 31), ("x", 33), ("y", 31), ("y", 33), ("x", 0), ("y", 64)]
)
def test_rejects_ec_coordinate_of_wrong_length(member: str, raw_size: int) -> None:
    value = int.from_bytes(b64url_decode(RFC7517_EC[member]), "big")
    raw = value.to_bytes(64, "big")[-raw_size:] if raw_size else b""
    jwk = {**RFC7517_EC, member: b64url_encode(raw)}
    with pytest.raises(JWKError):
        parse_public_jwk(jwk)


def test_rejects_ec_coordinate_with_a_leading_zero_byte_even_if_same_integer() -> None:
    x = b64url_decode(RFC7517_EC["x"])
    with pytest.raises(JWKError, match="length"):
        parse_public_jwk({**RFC7517_EC, "x": b64url_encode(b"\x00" + x)})


@pytest.mark.parametrize("raw_size", [31, 33, 0])
def test_rejects_okp_key_of_wrong_length(raw_size: int) -> None:
    raw = (b64url_decode(RFC8037_OKP["x"]) + b"\x00")[:raw_size]
    with pytest.raises(JWKError):
        parse_public_jwk({**RFC8037_OKP, "x": b64url_encode(raw)})


def test_rejects_point_off_the_curve() -> None:
    y = int.from_bytes(b64url_decode(RFC7517_EC["y"]), "big")
    with pytest.raises(JWKError):
        parse_public_jwk({**RFC7517_EC, "y": coordinate((y + 1) % P256_PRIME)})
    with pytest.raises(JWKError):
        parse_public_jwk({**RFC7517_EC, "x": coordinate(0), "y": coordinate(0)})


def test_rejects_point_on_another_curve() -> None:
    # A P-384 point relabelled as P-256 (invalid-curve attack): wrong size and off curve.
    other = public_jwk(generate_signing_key("ES384").key)
    with pytest.raises(JWKError):
        parse_public_jwk({**other, "crv": "P-256"})


def _small_x_point() -> tuple[int, int]:
    # The smallest x on P-256: x + p still fits in 32 bytes.
    for x in range(1, 100):
        rhs = (x**3 - 3 * x + P256_B) % P256_PRIME
        y = pow(rhs, (P256_PRIME + 1) // 4, P256_PRIME)
        if y * y % P256_PRIME == rhs:
            return x, y
    raise AssertionError("no small point")  # pragma: no cover


def test_rejects_coordinate_not_reduced_modulo_the_field_prime() -> None:
    # x and x + p name the same point: accepting both gives one key two thumbprints.
    x, y = _small_x_point()
    canonical = {"kty": "EC", "crv": "P-256", "x": coordinate(x), "y": coordinate(y)}
    assert parse_public_jwk(canonical).alg == "ES256"
    with pytest.raises(JWKError):
        parse_public_jwk({**canonical, "x": coordinate(x + P256_PRIME)})


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "sXch", "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "oct", "crv": "P-256", "x": "AA"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "Ed25519", "x": RFC8037_OKP["x"]},
        {"kty": "OKP", "crv": "X25519", "x": RFC8037_OKP["x"]},
        {"kty": "OKP", "crv": "Ed448", "x": RFC8037_OKP["x"]},
        {"kty": "OKP", "crv": "P-256", "x": RFC7517_EC["x"], "y": RFC7517_EC["y"]},
    ],
)
def test_rejects_unsupported_key_type_or_curve(jwk: dict[str, str]) -> None:
    with pytest.raises(JWKError):
        parse_public_jwk(jwk)


@pytest.mark.parametrize(
    ("jwk", "alg"),
    [
        (RFC7517_EC, "ES384"),
        (RFC7517_EC, "EdDSA"),
        (RFC7517_EC, "RS256"),
        (RFC7517_EC, "none"),
        (RFC7517_EC, "HS256"),
        (RFC8037_OKP, "ES256"),
        (RFC8037_OKP, "Ed25519"),
    ],
)
def test_rejects_alg_that_contradicts_the_curve(jwk: dict[str, str], alg: str) -> None:
    with pytest.raises(JWKError, match="alg"):
        parse_public_jwk({**jwk, "alg": alg})


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        "not a dict",
        [RFC7517_EC],
        {"crv": "P-256", "x": RFC7517_EC["x"], "y": RFC7517_EC["y"]},
        {"kty": "EC", "x": RFC7517_EC["x"], "y": RFC7517_EC["y"]},
        {"kty": "EC", "crv": "P-256", "x": RFC7517_EC["x"]},
        {"kty": "EC", "crv": "P-256", "y": RFC7517_EC["y"]},
        {"kty": "EC", "crv": "P-256", "x": 12, "y": RFC7517_EC["y"]},
        {"kty": "EC", "crv": "P-256", "x": RFC7517_EC["x"] + "=", "y": RFC7517_EC["y"]},
        {"kty": "EC", "crv": "P-256", "x": "é" * 43, "y": RFC7517_EC["y"]},
        {"kty": 1, "crv": "P-256"},
        {"kty": "OKP", "crv": "Ed25519"},
    ],
)
def test_rejects_malformed_jwk(jwk: object) -> None:
    with pytest.raises(JWKError):
        parse_public_jwk(jwk)


def test_jwk_error_is_a_value_error() -> None:
    assert issubclass(JWKError, ValueError)


# --- algorithms and signatures -------------------------------------------------------------


def test_only_es256_es384_and_eddsa_are_allowed() -> None:
    assert frozenset({"ES256", "ES384", "EdDSA"}) == ALGORITHMS


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "PS256", "ES512", "ES256K", ""])
def test_refuses_to_generate_key_for_other_algorithms(alg: str) -> None:
    with pytest.raises(JWKError):
        generate_signing_key(alg)


def test_algorithm_follows_the_curve() -> None:
    assert algorithm_for(ec.generate_private_key(ec.SECP256R1())) == "ES256"
    assert algorithm_for(ec.generate_private_key(ec.SECP384R1()).public_key()) == "ES384"
    assert algorithm_for(ed25519.Ed25519PrivateKey.generate()) == "EdDSA"
    with pytest.raises(JWKError):
        algorithm_for(ec.generate_private_key(ec.SECP521R1()))


@pytest.mark.parametrize(("alg", "size"), [("ES256", 64), ("ES384", 96), ("EdDSA", 64)])
def test_sign_then_verify_round_trip(alg: str, size: int) -> None:
    key = generate_signing_key(alg)
    signature = key.sign(MESSAGE)
    assert len(signature) == size
    verifier = key.verification_key()
    assert signature_holds(verifier, signature, MESSAGE) is True
    assert signature_holds(parse_public_jwk(verifier.public_jwk()), signature, MESSAGE) is True


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
def test_verify_returns_nothing_for_a_good_signature_and_raises_for_any_bad_one(alg: str) -> None:
    # As pyca's keys do: no boolean a caller could forget to look at.
    key = generate_signing_key(alg)
    signature = key.sign(MESSAGE)
    key.verification_key().verify(signature, MESSAGE)  # returns, no answer to forget
    for bad in (signature[:-1], bytes(len(signature)), b"", signature[::-1]):
        with pytest.raises(InvalidSignatureError) as caught:
            key.verification_key().verify(bad, MESSAGE)
        # One opaque error: nothing says which check tripped.
        assert str(caught.value) == ""
    with pytest.raises(InvalidSignatureError):
        key.verification_key().verify(signature, MESSAGE + b"x")


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
def test_rejects_signature_over_another_message(alg: str) -> None:
    key = generate_signing_key(alg)
    signature = key.sign(MESSAGE)
    assert signature_holds(key.verification_key(), signature, MESSAGE + b"x") is False
    assert signature_holds(key.verification_key(), signature, MESSAGE[:-1]) is False


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
def test_rejects_signature_by_another_key_of_the_same_algorithm(alg: str) -> None:
    signature = generate_signing_key(alg).sign(MESSAGE)
    assert (
        signature_holds(generate_signing_key(alg).verification_key(), signature, MESSAGE) is False
    )


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
def test_rejects_any_single_bit_flip_in_signature(alg: str) -> None:
    key = generate_signing_key(alg)
    signature = bytearray(key.sign(MESSAGE))
    verifier = key.verification_key()
    for position in range(0, len(signature) * 8, 7):
        flipped = bytearray(signature)
        flipped[position // 8] ^= 1 << (position % 8)
        assert signature_holds(verifier, bytes(flipped), MESSAGE) is False, position


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
@pytest.mark.parametrize("delta", [-1, 1, -32])
def test_rejects_signature_of_wrong_length(alg: str, delta: int) -> None:
    key = generate_signing_key(alg)
    signature = key.sign(MESSAGE)
    resized = signature[:delta] if delta < 0 else signature + b"\x00" * delta
    assert signature_holds(key.verification_key(), resized, MESSAGE) is False
    assert signature_holds(key.verification_key(), b"", MESSAGE) is False


def test_rejects_es256_signature_in_der_form() -> None:
    key = generate_signing_key("ES256")
    raw = key.sign(MESSAGE)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert signature_holds(key.verification_key(), der, MESSAGE) is False


def test_es256_signature_verifies_only_with_an_es256_key() -> None:
    es256 = generate_signing_key("ES256")
    signature = es256.sign(MESSAGE)
    # The same public key bound to ES384 cannot verify it: the algorithm comes from the key.
    confused = VerificationKey(kid="k", alg="ES384", key=es256.key.public_key())
    assert signature_holds(confused, signature, MESSAGE) is False


def _es256_parts() -> tuple[VerificationKey, int, int]:
    key = generate_signing_key("ES256")
    raw = key.sign(MESSAGE)
    return key.verification_key(), int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _p1363(r: int, s: int, size: int = 32) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def test_rejects_es256_signature_with_r_and_s_zero() -> None:
    # CVE-2022-21449 ("psychic signatures"): r = s = 0 verifies any message in a broken
    # verifier.
    verifier, _, _ = _es256_parts()
    assert signature_holds(verifier, bytes(64), MESSAGE) is False
    assert signature_holds(verifier, bytes(64), b"") is False


def test_rejects_es256_signature_with_r_zero_or_s_zero() -> None:
    verifier, r, s = _es256_parts()
    assert signature_holds(verifier, _p1363(r, s), MESSAGE) is True
    assert signature_holds(verifier, _p1363(0, s), MESSAGE) is False
    assert signature_holds(verifier, _p1363(r, 0), MESSAGE) is False


@pytest.mark.parametrize("value", [P256_ORDER, P256_ORDER + 1, 2**256 - 1])
def test_rejects_es256_signature_with_r_or_s_not_below_the_order(value: int) -> None:
    verifier, r, s = _es256_parts()
    assert signature_holds(verifier, _p1363(value, s), MESSAGE) is False
    assert signature_holds(verifier, _p1363(r, value), MESSAGE) is False
    assert signature_holds(verifier, _p1363(value, value), MESSAGE) is False


def test_rejects_es384_signature_with_s_equal_to_the_order() -> None:
    key = generate_signing_key("ES384")
    raw = key.sign(MESSAGE)
    r = int.from_bytes(raw[:48], "big")
    assert signature_holds(key.verification_key(), _p1363(r, P384_ORDER, 48), MESSAGE) is False
    assert signature_holds(key.verification_key(), bytes(96), MESSAGE) is False


def test_es256_accepts_the_high_s_twin_as_rfc7518_allows() -> None:
    # ECDSA signatures are malleable: (r, n - s) is valid too. JWS does not require low-S,
    # and Wycheproof marks these "valid"; Thiqa never uses a signature as an identifier.
    verifier, r, s = _es256_parts()
    assert signature_holds(verifier, _p1363(r, P256_ORDER - s), MESSAGE) is True


def test_rejects_eddsa_signature_of_all_zeros() -> None:
    key = generate_signing_key("EdDSA")
    assert signature_holds(key.verification_key(), bytes(64), MESSAGE) is False


def test_key_material_stays_out_of_repr() -> None:
    key = generate_signing_key("ES256")
    assert "key=" not in repr(key)
    assert "key=" not in repr(key.verification_key())
    assert key.kid in repr(key)


def test_signing_key_signs_deterministically_only_for_eddsa() -> None:
    ed = generate_signing_key("EdDSA")
    assert ed.sign(MESSAGE) == ed.sign(MESSAGE)
    es = generate_signing_key("ES256")
    assert es.sign(MESSAGE) != es.sign(MESSAGE)  # fresh nonce each time (2**-256 to fail)


def test_coordinates_have_the_curve_size() -> None:
    for alg, size in (("ES256", 32), ("ES384", 48)):
        jwk = public_jwk(generate_signing_key(alg).key)
        assert len(b64url_decode(jwk["x"])) == size
        assert len(b64url_decode(jwk["y"])) == size
        assert math.ceil(size * 8 / 6) == len(jwk["x"])


def test_signing_key_is_frozen() -> None:
    key = generate_signing_key("ES256")
    assert isinstance(key, SigningKey)
    with pytest.raises(AttributeError):
        key.alg = "EdDSA"  # type: ignore[misc]  # the assignment mypy refuses is the test
