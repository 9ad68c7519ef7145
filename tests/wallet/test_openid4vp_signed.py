"""The test wallet reading signed Request Objects (x509_hash, x509_san_dns) without a server:
the certificate against its trust store, the signature by the leaf's key, the client id
naming the leaf, the wallet_nonce echoed."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from service.core.keys import generate_signing_key
from service.core.openid4vp import PresentationRequest
from service.core.x509 import certificate_hash
from service.keyring.certificates import AccessCredential, Pki, make_root
from service.wallet.openid4vp import PresentationError, read_request

JWT = "application/oauth-authz-req+jwt"
HOST = "verifier.example"
RESPONSE_URI = f"https://{HOST}/presentation-responses/" + "r" * 22
NOW = int(time.time())


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> AccessCredential:
    pki = Pki(Path(tmp_path_factory.mktemp("keys")))
    pki.init(common_name="RP root", now=NOW)
    return pki.issue_access(host=HOST, now=NOW)


def _request(client_id: str, response_uri: str = RESPONSE_URI) -> PresentationRequest:
    return PresentationRequest(
        request_id="r" * 22,
        response_uri=response_uri,
        nonce="n" * 22,
        state="s" * 22,
        vct="urn:vct",
        paths=(("given_name",),),
        purpose="Open an account",
        client_name="bank-app",
        issued_ms=NOW * 1000,
        expires_ms=(NOW + 300) * 1000,
        signed_client_id=client_id,
        response_mode="direct_post.jwt",
        encryption_key={"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k"},
    )


def _hash_id(access: AccessCredential) -> str:
    return f"x509_hash:{certificate_hash(access.leaf)}"


def test_signed_request_under_a_trusted_root_is_read(access: AccessCredential) -> None:
    token = _request(_hash_id(access)).request_object(access.key, wallet_nonce="w1")
    request = read_request(
        token.encode(), JWT, expected_client_id=None, trust=[access.root], wallet_nonce="w1"
    )
    assert request.verified_signer
    assert request.response_mode == "direct_post.jwt"
    assert request.encryption_jwk is not None


def test_untrusted_root_is_refused(access: AccessCredential) -> None:
    other, _ = make_root("Other", now=NOW)
    token = _request(_hash_id(access)).request_object(access.key)
    with pytest.raises(PresentationError, match="untrusted_certificate"):
        read_request(token.encode(), JWT, expected_client_id=None, trust=[other])


def test_signed_by_another_key_than_the_certificates(access: AccessCredential) -> None:
    impostor = replace(generate_signing_key(), x5c=access.key.x5c)
    token = _request(_hash_id(access)).request_object(impostor)
    with pytest.raises(PresentationError, match="signature does not verify"):
        read_request(token.encode(), JWT, expected_client_id=None, trust=[access.root])


def test_client_id_must_name_the_certificate(access: AccessCredential) -> None:
    wrong_hash = _request("x509_hash:" + "A" * 43).request_object(access.key)
    with pytest.raises(PresentationError, match="x509_hash does not match"):
        read_request(wrong_hash.encode(), JWT, expected_client_id=None, trust=[access.root])
    off_host = _request(
        f"x509_san_dns:{HOST}", "https://elsewhere.example/presentation-responses/x"
    ).request_object(access.key)
    with pytest.raises(PresentationError, match="not on the certificate's host"):
        read_request(off_host.encode(), JWT, expected_client_id=None, trust=[access.root])
    good = _request(f"x509_san_dns:{HOST}").request_object(access.key)
    assert read_request(good.encode(), JWT, expected_client_id=None, trust=[access.root])


def test_expired_access_certificate_is_refused(access: AccessCredential) -> None:
    token = _request(_hash_id(access)).request_object(access.key)
    with pytest.raises(PresentationError, match="certificate_expired"):
        read_request(
            token.encode(),
            JWT,
            expected_client_id=None,
            trust=[access.root],
            now=NOW + 2 * 365 * 86_400,
        )


def test_wallet_nonce_must_be_echoed(access: AccessCredential) -> None:
    token = _request(_hash_id(access)).request_object(access.key, wallet_nonce="other")
    with pytest.raises(PresentationError, match="wallet's nonce"):
        read_request(
            token.encode(), JWT, expected_client_id=None, trust=[access.root], wallet_nonce="w1"
        )
