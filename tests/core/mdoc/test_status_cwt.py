"""Status List Tokens in CWT form: the draft's examples, and Thiqa's own tokens read back."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.mdoc.cbor import decode, encode
from service.core.mdoc.status_cwt import read_status_list_cwt, sign_status_list_cwt
from service.core.status_list import StatusListError, get_status
from tests.core.mdoc.pki import make_pki

VECTORS = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "vectors"
        / "status-list"
        / "statuslist_cwt_vectors.json"
    ).read_text()
)
TOKENS = {t["name"]: t for t in VECTORS["tokens"]}
URI = "https://example.com/statuslists/1"
NOW = 1686920170 + 60


def _b64(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


JWK = VECTORS["key"]["jwk"]
EXAMPLE_KEY = ec.EllipticCurvePublicNumbers(
    _b64(JWK["x"]), _b64(JWK["y"]), ec.SECP256R1()
).public_key()


def test_the_draft_example_verifies_to_its_sixteen_statuses() -> None:
    vector = TOKENS["status_list_cwt"]
    token = read_status_list_cwt(bytes.fromhex(vector["value"]), key=EXAMPLE_KEY, uri=URI, now=NOW)
    expected = vector["status_list"]
    assert (token.bits, token.iat, token.exp, token.ttl) == (1, 1686920170, 2291720170, 43200)
    assert [get_status(token.data, i, 1) for i in range(expected["size"])] == expected["statuses"]


def test_the_referenced_token_resolves_to_invalid() -> None:
    referenced = decode(bytes.fromhex(TOKENS["referenced_token_cwt"]["value"]))
    claims = decode(referenced.value[2])
    reference = claims[65535]["status_list"]
    token = read_status_list_cwt(
        bytes.fromhex(TOKENS["status_list_cwt"]["value"]),
        key=EXAMPLE_KEY,
        uri=reference["uri"],
        now=NOW,
    )
    assert get_status(token.data, reference["idx"], token.bits) == 1


def test_the_draft_example_fails_under_another_key_or_uri() -> None:
    data = bytes.fromhex(TOKENS["status_list_cwt"]["value"])
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(StatusListError, match="invalid_signature"):
        read_status_list_cwt(data, key=other, uri=URI, now=NOW)
    with pytest.raises(StatusListError, match="sub"):
        read_status_list_cwt(data, key=EXAMPLE_KEY, uri=URI + "0", now=NOW)
    with pytest.raises(StatusListError, match="expired"):
        read_status_list_cwt(data, key=EXAMPLE_KEY, uri=URI, now=2291720170 + 3600)


PKI = make_pki()
SIGNER_KEY = PKI.signer_key.public_key()


def _thiqa_token() -> bytes:
    data = bytearray(4)
    data[0] = 0b0000_0100  # entry 1 (2 bits) = 1, revoked
    return sign_status_list_cwt(
        bytes(data),
        uri=URI,
        bits=2,
        now=NOW,
        ttl=300,
        lifetime=3600,
        key=PKI.signer_key,
        x5chain=[PKI.signer],
    )


def test_thiqa_tokens_read_back_with_the_signers_key() -> None:
    token = read_status_list_cwt(_thiqa_token(), key=SIGNER_KEY, uri=URI, now=NOW)
    assert (token.bits, token.ttl, token.exp) == (2, 300, NOW + 3600)
    assert [get_status(token.data, i, 2) for i in range(4)] == [0, 1, 0, 0]
    signed = decode(_thiqa_token())
    assert signed.tag == 18
    assert decode(signed.value[0]) == {1: -7, 16: "application/statuslist+cwt"}
    assert signed.value[1][33] == PKI.signer.public_bytes(serialization.Encoding.DER)


def test_a_token_with_another_typ_is_refused() -> None:
    signed = decode(_thiqa_token())
    signed.value[0] = encode({1: -7, 16: "application/statuslist+jwt"})
    with pytest.raises(StatusListError, match="statuslist\\+cwt"):
        read_status_list_cwt(encode(signed), key=SIGNER_KEY, uri=URI, now=NOW)


def test_an_untagged_or_trailing_token_is_refused() -> None:
    signed = decode(_thiqa_token())
    with pytest.raises(StatusListError, match="cbor_wrong_tag"):
        read_status_list_cwt(encode(signed.value), key=SIGNER_KEY, uri=URI, now=NOW)
    with pytest.raises(StatusListError, match="cbor_trailing_bytes"):
        read_status_list_cwt(_thiqa_token() + b"\0", key=SIGNER_KEY, uri=URI, now=NOW)
    assert isinstance(signed, cbor2.CBORTag)
