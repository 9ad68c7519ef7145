"""HAIP 1.0 presentation requests over real HTTP and Redis: signed (x509_hash, x509_san_dns),
by reference (GET, POST with wallet_nonce) or by value, answered encrypted (direct_post.jwt),
each wrong answer refused with its code and nothing spent; the same-device flow's
response_code; DCQL trusted_authorities."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.core import holder
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.jwe import encrypt_response, new_encryption_key, public_encryption_jwk
from service.core.keys import public_jwk
from service.core.x509 import authority_key_identifier
from service.keyring.certificates import Pki
from service.settings import Settings
from service.wallet import openid4vp as wallet_vp
from service.wallet.store import Wallet

REQUESTED = [["given_name"], ["place_of_birth", "locality"]]
PURPOSE = "Vérifier votre identité / التحقق من الهوية"


@pytest.fixture
def wallet(
    tmp_path: Path, http: httpx.Client, citizen: dict[str, Any], settings: Settings
) -> Wallet:
    holder_wallet = Wallet.open(tmp_path / "wallet.json")
    holder_wallet.add_trust(Pki(settings.keys_dir).root())
    key = holder_wallet.new_key()
    issued = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(key.key)}
    )
    assert issued.status_code == 201, issued.text
    holder_wallet.add(issued.json()["credential"], key)
    return holder_wallet


def create(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = http.post(
        "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": PURPOSE, **overrides}
    )
    assert response.status_code == 201, response.text
    return response.json()


def state_of(http: httpx.Client, request_id: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"/v1/presentation-requests/{request_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def fetch(wallet: Wallet, created: dict[str, Any]) -> wallet_vp.WalletRequest:
    with httpx.Client(timeout=10) as anonymous:
        return wallet_vp.fetch_request(
            anonymous,
            wallet_vp.parse_invocation(created["wallet_uri"]),
            trust=wallet.trust_anchors(),
        )


def vp_token(wallet: Wallet, request: wallet_vp.WalletRequest) -> dict[str, Any]:
    stored = wallet.credentials()[0]
    presentation = holder.present(
        stored.credential,
        [tuple(p) for p in REQUESTED],
        holder_key=wallet.key(stored.key_id),
        nonce=request.nonce,
        audience=request.client_id,
        now=int(time.time()),
    )
    return {"credential": [presentation]}


def post(request: wallet_vp.WalletRequest, form: dict[str, str]) -> httpx.Response:
    return httpx.post(request.response_uri, data=form, timeout=10)


def encrypted(
    request: wallet_vp.WalletRequest, token: dict[str, Any], *, enc: str = "A128GCM", **jwk: Any
) -> dict[str, str]:
    assert request.encryption_jwk is not None
    key = {**request.encryption_jwk, **jwk}
    return {
        "response": encrypt_response(
            {"vp_token": token, "state": request.state}, public_jwk=key, enc=enc
        )
    }


def assert_refused_and_pending(
    http: httpx.Client, created: dict[str, Any], answer: httpx.Response, status: int, code: str
) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert state_of(http, created["request_id"])["state"] == "pending"  # nothing spent


def test_default_request_is_signed_x509_hash_by_reference_and_encrypted(
    http: httpx.Client, wallet: Wallet, citizen: dict[str, Any]
) -> None:
    created = create(http)
    assert created["client_id"].startswith("x509_hash:")
    assert "request_uri=" in created["wallet_uri"]
    request = fetch(wallet, created)
    assert request.verified_signer
    assert request.response_mode == "direct_post.jwt"
    assert request.encryption_jwk is not None
    assert request.encryption_jwk["alg"] == "ECDH-ES"
    assert "d" not in request.encryption_jwk
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet)
    assert result.accepted, result.body
    verdict = state_of(http, created["request_id"])["verdict"]
    assert verdict["valid"] is True
    assert verdict["claims"] == {
        "given_name": citizen["given_name"],
        "place_of_birth": {"locality": citizen["place_of_birth"]["locality"]},
    }


def test_each_request_has_its_own_encryption_key(http: httpx.Client, wallet: Wallet) -> None:
    first, second = fetch(wallet, create(http)), fetch(wallet, create(http))
    assert first.encryption_jwk is not None
    assert second.encryption_jwk is not None
    assert first.encryption_jwk["x"] != second.encryption_jwk["x"]


def test_a256gcm_is_accepted(http: httpx.Client, wallet: Wallet) -> None:
    created = create(http)
    request = fetch(wallet, created)
    answer = post(request, encrypted(request, vp_token(wallet, request), enc="A256GCM"))
    assert answer.status_code == 200, answer.text
    assert state_of(http, created["request_id"])["state"] == "completed"


def test_unencrypted_answer_to_an_encrypted_request_is_refused(
    http: httpx.Client, wallet: Wallet
) -> None:
    created = create(http)
    request = fetch(wallet, created)
    form = {"vp_token": json.dumps(vp_token(wallet, request)), "state": request.state or ""}
    assert_refused_and_pending(http, created, post(request, form), 400, "encryption_required")
    # The request was not spent: the right answer still goes through.
    good = post(request, encrypted(request, vp_token(wallet, request)))
    assert good.status_code == 200, good.text


def test_answer_encrypted_to_another_requests_key_is_refused(
    http: httpx.Client, wallet: Wallet
) -> None:
    created, other = create(http), create(http)
    request, other_request = fetch(wallet, created), fetch(wallet, other)
    assert other_request.encryption_jwk is not None
    form = {
        "response": encrypt_response(
            {"vp_token": vp_token(wallet, request), "state": request.state},
            public_jwk=other_request.encryption_jwk,
        )
    }
    assert_refused_and_pending(http, created, post(request, form), 400, "decryption_failed")
    # Without a kid to tell, the key agreement itself fails.
    stranger = public_encryption_jwk(new_encryption_key())
    del stranger["kid"]
    form = {
        "response": encrypt_response(
            {"vp_token": vp_token(wallet, request), "state": request.state}, public_jwk=stranger
        )
    }
    assert_refused_and_pending(http, created, post(request, form), 400, "decryption_failed")


def _with_header(token: str, **changes: Any) -> str:
    head, *rest = token.split(".")
    header = {**json.loads(b64url_decode(head)), **changes}
    return ".".join([b64url_encode(json_dumps(header).encode()), *rest])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"enc": "A192GCM"}, "unsupported_encryption"),
        ({"alg": "ECDH-ES+A128KW"}, "unsupported_encryption"),
        ({"alg": "dir"}, "unsupported_encryption"),
        ({"zip": "DEF"}, "unsupported_encryption"),
    ],
    ids=["enc", "alg-kw", "alg-dir", "zip"],
)
def test_wrong_algorithm_or_encoding_is_refused(
    http: httpx.Client, wallet: Wallet, change: dict[str, str], code: str
) -> None:
    created = create(http)
    request = fetch(wallet, created)
    token = encrypted(request, vp_token(wallet, request))["response"]
    form = {"response": _with_header(token, **change)}
    assert_refused_and_pending(http, created, post(request, form), 400, code)


def test_tampered_tag_and_garbage_are_refused(http: httpx.Client, wallet: Wallet) -> None:
    created = create(http)
    request = fetch(wallet, created)
    token = encrypted(request, vp_token(wallet, request))["response"]
    head, key, iv, text, tag = token.split(".")
    flipped = b64url_encode(bytes([b64url_decode(tag)[0] ^ 1]) + b64url_decode(tag)[1:])
    tampered = ".".join([head, key, iv, text, flipped])
    assert_refused_and_pending(
        http, created, post(request, {"response": tampered}), 400, "decryption_failed"
    )
    for junk in ("a.b.c.d.e", "not a jwe", "e30.."):
        assert_refused_and_pending(
            http, created, post(request, {"response": junk}), 400, "malformed_response"
        )


def test_oversized_response_is_refused_unread(http: httpx.Client, wallet: Wallet) -> None:
    created = create(http)
    request = fetch(wallet, created)
    form = {"response": "e" * (48 * 1024 + 1)}
    assert_refused_and_pending(http, created, post(request, form), 413, "response_too_large")


def test_request_uri_method_post_echoes_the_wallet_nonce(
    http: httpx.Client, wallet: Wallet
) -> None:
    created = create(http, request_uri_method="post")
    assert "request_uri_method=post" in created["wallet_uri"]
    posted = httpx.post(created["request_uri"], data={"wallet_nonce": "n-123"}, timeout=10)
    assert posted.status_code == 200, posted.text
    claims = json.loads(b64url_decode(posted.text.split(".")[1]))
    assert claims["wallet_nonce"] == "n-123"
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet)
    assert result.accepted, result.body


def test_x509_san_dns_request(http: httpx.Client, wallet: Wallet) -> None:
    created = create(http, client_id_prefix="x509_san_dns")
    assert created["client_id"] == "x509_san_dns:127.0.0.1"
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet)
    assert result.accepted, result.body


def test_signed_request_by_value(http: httpx.Client, wallet: Wallet) -> None:
    created = create(http, request_mode="value")
    assert created["request_uri"] is None
    assert "request=" in created["wallet_uri"]
    # A certificate chain makes the link too long for a QR code: a link, not an image.
    assert created["qr_png"] is None
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet)
    assert result.accepted, result.body
    # Nothing is served by reference for it.
    fetched = httpx.get(
        http.base_url.join(f"/presentation-requests/{created['request_id']}"), timeout=10
    )
    assert fetched.status_code == 404


def test_redirect_uri_requests_go_by_value_only(http: httpx.Client, wallet: Wallet) -> None:
    refused = http.post(
        "/v1/presentation-requests",
        json={"claims": REQUESTED, "purpose": PURPOSE, "client_id_prefix": "redirect_uri"},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_request"
    created = create(http, client_id_prefix="redirect_uri", request_mode="value")
    assert created["client_id"].startswith("redirect_uri:")
    assert "response_type=vp_token" in created["wallet_uri"]
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet)
    assert result.accepted, result.body


def test_wallet_refuses_a_request_its_trust_store_does_not_cover(
    http: httpx.Client, wallet: Wallet, tmp_path: Path
) -> None:
    created = create(http)
    stranger = Wallet.open(tmp_path / "stranger.json")
    with pytest.raises(wallet_vp.PresentationError, match="untrusted_certificate"):
        wallet_vp.present(created["wallet_uri"], wallet=stranger)
    assert state_of(http, created["request_id"])["state"] == "pending"


def test_same_device_flow_binds_the_result_to_the_response_code(
    http: httpx.Client, wallet: Wallet
) -> None:
    created = create(http, redirect_uri="https://rp.example/done")
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet)
    assert result.accepted, result.body
    redirect = result.body["redirect_uri"]
    assert redirect.startswith("https://rp.example/done#response_code=")
    code = redirect.split("=", 1)[1]
    request_id = created["request_id"]
    # Without the code: the state, never the verdict.
    hidden = state_of(http, request_id)
    assert hidden["state"] == "completed"
    assert hidden["verdict"] is None
    wrong = http.get(f"/v1/presentation-requests/{request_id}", params={"response_code": "x" * 22})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "response_code_mismatch"
    shown = state_of(http, request_id, response_code=code)
    assert shown["verdict"]["valid"] is True


def test_trusted_authorities_restrict_the_issuer(
    http: httpx.Client, wallet: Wallet, settings: Settings
) -> None:
    own = authority_key_identifier(Pki(settings.keys_dir).root())
    created = create(http, trusted_authorities=[own])
    request = fetch(wallet, created)
    assert request.verified_signer
    assert wallet_vp.present(created["wallet_uri"], wallet=wallet).accepted
    elsewhere = create(http, trusted_authorities=["c29tZS1vdGhlci1jYQ"])
    result = wallet_vp.present(elsewhere["wallet_uri"], wallet=wallet)
    assert result.status == 400
    assert [e["code"] for e in result.body["errors"]] == ["untrusted_certificate"]
