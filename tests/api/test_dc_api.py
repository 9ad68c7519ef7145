"""Digital Credentials API requests (OpenID4VP 1.0 Appendix A, HAIP 1.0 §5.2), driven by a
simulated caller: what a browser would hand the relying party's page from
``navigator.credentials.get``, made here by the test as a wallet would, then posted by the
page to Thiqa with the origin the browser reported."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from service.core import holder, jws
from service.core.jwe import encrypt_response
from service.core.keys import SigningKey, public_jwk
from service.core.openid4vp import REQUEST_OBJECT_TYP
from service.core.x509 import certificate_hash, parse_x5c, validate_chain
from service.keyring.certificates import Pki
from service.settings import Settings

ORIGIN = "https://rp.example"
REQUESTED = [["given_name"], ["family_name"]]


@pytest.fixture
def credential(http: httpx.Client, citizen: dict[str, Any], wallet: SigningKey) -> str:
    issued = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(wallet.key)}
    )
    assert issued.status_code == 201, issued.text
    return issued.json()["credential"]


def create(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {
        "claims": REQUESTED,
        "purpose": "Open an account",
        "response_mode": "dc_api.jwt",
        "expected_origins": [ORIGIN],
        **overrides,
    }
    response = http.post("/v1/presentation-requests", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wallet_reads(created: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The wallet's side of the browser call: check the signed request, return its claims."""
    entry = created["dc_api_request"]
    assert entry["protocol"] == "openid4vp-v1-signed"
    token = jws.parse(entry["data"]["request"], typ=frozenset({REQUEST_OBJECT_TYP}))
    chain = parse_x5c(token.header["x5c"])
    validated = validate_chain(chain, anchors=[Pki(settings.keys_dir).root()], now=int(time.time()))
    key = validated.verification_key()
    key.verify(token.signature, token.signing_input)  # raises unless the leaf's key signed
    claims = dict(token.payload)
    assert claims["client_id"] == f"x509_hash:{certificate_hash(validated.leaf)}"
    return claims


def answer(
    credential: str, wallet: SigningKey, claims: dict[str, Any], *, audience: str, encrypt: bool
) -> dict[str, Any]:
    presentation = holder.present(
        credential,
        [tuple(p) for p in REQUESTED],
        holder_key=wallet,
        nonce=claims["nonce"],
        audience=audience,
        now=int(time.time()),
    )
    vp_token = {"credential": [presentation]}
    if not encrypt:
        return {"vp_token": vp_token}
    (key,) = claims["client_metadata"]["jwks"]["keys"]
    return {"response": encrypt_response({"vp_token": vp_token}, public_jwk=key)}


def post(http: httpx.Client, created: dict[str, Any], data: dict[str, Any], origin: str = ORIGIN):
    return http.post(
        f"/v1/presentation-requests/{created['request_id']}/dc-api-response",
        json={"origin": origin, "data": data},
    )


def verdict(http: httpx.Client, created: dict[str, Any]) -> dict[str, Any]:
    return http.get(f"/v1/presentation-requests/{created['request_id']}").json()


def test_signed_dc_api_request_round_trip(
    http: httpx.Client, settings: Settings, credential: str, wallet: SigningKey, citizen: dict
) -> None:
    created = create(http)
    assert created["wallet_uri"] is None
    assert created["request_uri"] is None
    claims = wallet_reads(created, settings)
    assert claims["expected_origins"] == [ORIGIN]
    assert claims["response_mode"] == "dc_api.jwt"
    assert "response_uri" not in claims
    assert "state" not in claims
    data = answer(credential, wallet, claims, audience=f"origin:{ORIGIN}", encrypt=True)
    accepted = post(http, created, data)
    assert accepted.status_code == 200, accepted.text
    result = verdict(http, created)
    assert result["state"] == "completed"
    assert result["verdict"]["claims"] == {
        "given_name": citizen["given_name"],
        "family_name": citizen["family_name"],
    }


def test_origin_not_expected_is_refused_and_spends_nothing(
    http: httpx.Client, settings: Settings, credential: str, wallet: SigningKey
) -> None:
    created = create(http)
    claims = wallet_reads(created, settings)
    data = answer(credential, wallet, claims, audience="origin:https://evil.example", encrypt=True)
    refused = post(http, created, data, origin="https://evil.example")
    assert refused.status_code == 400
    assert refused.json()["code"] == "origin_mismatch"
    assert verdict(http, created)["state"] == "pending"


def test_key_binding_to_the_client_id_instead_of_the_origin_is_rejected(
    http: httpx.Client, settings: Settings, credential: str, wallet: SigningKey
) -> None:
    created = create(http)
    claims = wallet_reads(created, settings)
    data = answer(credential, wallet, claims, audience=claims["client_id"], encrypt=True)
    refused = post(http, created, data)
    assert refused.status_code == 400
    assert [e["code"] for e in refused.json()["errors"]] == ["audience_mismatch"]
    assert verdict(http, created)["state"] == "failed"


def test_plain_answer_to_dc_api_jwt_is_refused(
    http: httpx.Client, settings: Settings, credential: str, wallet: SigningKey
) -> None:
    created = create(http)
    claims = wallet_reads(created, settings)
    data = answer(credential, wallet, claims, audience=f"origin:{ORIGIN}", encrypt=False)
    refused = post(http, created, data)
    assert refused.status_code == 400
    assert refused.json()["code"] == "encryption_required"
    assert verdict(http, created)["state"] == "pending"


def test_unsigned_dc_api_request(http: httpx.Client, credential: str, wallet: SigningKey) -> None:
    created = create(http, client_id_prefix="redirect_uri", response_mode="dc_api")
    entry = created["dc_api_request"]
    assert entry["protocol"] == "openid4vp-v1-unsigned"
    claims = entry["data"]
    assert "client_id" not in claims  # an unsigned DC API request names no client (A.2)
    data = answer(credential, wallet, claims, audience=f"origin:{ORIGIN}", encrypt=False)
    accepted = post(http, created, data)
    assert accepted.status_code == 200, accepted.text
    assert verdict(http, created)["state"] == "completed"


def test_dc_api_needs_expected_origins_and_the_wallet_endpoints_do_not_serve_it(
    http: httpx.Client, anonymous: httpx.Client
) -> None:
    missing = http.post(
        "/v1/presentation-requests",
        json={"claims": REQUESTED, "purpose": "x", "response_mode": "dc_api.jwt"},
    )
    assert missing.status_code == 422
    assert missing.json()["code"] == "invalid_request"
    created = create(http)
    request_id = created["request_id"]
    assert anonymous.get(f"/presentation-requests/{request_id}").status_code == 404
    posted = anonymous.post(f"/presentation-responses/{request_id}", data={"response": "x"})
    assert posted.status_code == 404
