"""Encrypted responses (service/core/jwe.py): joserfc does the cryptography; the policy
around it is checked on the header before any key agreement."""

from __future__ import annotations

import pytest

from service.core.jwe import (
    EncryptionError,
    decrypt_response,
    encrypt_response,
    new_encryption_key,
    public_encryption_jwk,
)

KEY = new_encryption_key()
PUBLIC = public_encryption_jwk(KEY)


@pytest.mark.parametrize("enc", ["A128GCM", "A256GCM"])
def test_round_trip(enc: str) -> None:
    token = encrypt_response({"vp_token": {"c": ["x~"]}, "state": "s"}, public_jwk=PUBLIC, enc=enc)
    assert decrypt_response(token, private_jwk=KEY) == {"vp_token": {"c": ["x~"]}, "state": "s"}


def test_public_half_has_no_private_member() -> None:
    assert "d" not in PUBLIC
    assert PUBLIC["use"] == "enc"
    assert PUBLIC["alg"] == "ECDH-ES"


def test_enc_not_offered_is_refused_before_decryption() -> None:
    token = encrypt_response({"a": 1}, public_jwk=PUBLIC, enc="A256GCM")
    with pytest.raises(EncryptionError) as caught:
        decrypt_response(token, private_jwk=KEY, enc_values=("A128GCM",))
    assert caught.value.code == "unsupported_encryption"


def test_other_key_fails_to_decrypt() -> None:
    other = new_encryption_key()
    token = encrypt_response({"a": 1}, public_jwk=public_encryption_jwk(other))
    with pytest.raises(EncryptionError) as caught:
        decrypt_response(token, private_jwk=KEY)
    assert caught.value.code == "decryption_failed"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("x" * 60_000, "response_too_large"),
        ("a.b.c", "malformed_response"),
        ("é.b.c.d.e", "malformed_response"),
        ("e30.a.b.c.d", "unsupported_encryption"),
    ],
    ids=["too-large", "three-parts", "not-ascii", "no-alg"],
)
def test_malformed_tokens(token: str, code: str) -> None:
    with pytest.raises(EncryptionError) as caught:
        decrypt_response(token, private_jwk=KEY)
    assert caught.value.code == code


def test_plaintext_must_be_a_json_object() -> None:
    from joserfc import jwe
    from joserfc.jwk import ECKey

    key = ECKey.import_key({k: PUBLIC[k] for k in ("kty", "crv", "x", "y")})
    token = jwe.encrypt_compact({"alg": "ECDH-ES", "enc": "A128GCM"}, b"[1]", key)
    with pytest.raises(EncryptionError) as caught:
        decrypt_response(token, private_jwk=KEY)
    assert caught.value.code == "malformed_response"
