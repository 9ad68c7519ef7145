"""OpenID4VP with DCQL ``mso_mdoc``: request, DeviceResponse by direct_post.jwt (the default:
encrypted, the SessionTranscript over the key's thumbprint and the ``x509_hash`` client id),
by plain direct_post and through the Digital Credentials API, verdict with only the requested
elements, revocation seen by the next presentation. Real HTTP, real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from service.core import jws
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.jwe import encrypt_response
from service.core.keys import SigningKey, generate_signing_key, jwk_thumbprint, public_jwk
from service.core.mdoc import national_id
from service.core.mdoc.cbor import decode
from service.core.mdoc.device_response import present
from service.core.mdoc.handover import dc_api_session_transcript, redirect_session_transcript
from service.core.openid4vp import REQUEST_OBJECT_MEDIA_TYPE, REQUEST_OBJECT_TYP

NS = national_id.NAMESPACE
REQUESTED = [[NS, "given_name_national_character"], [NS, "birth_date"]]
PURPOSE = "Vérifier votre identité"
ORIGIN = "https://rp.example"


@pytest.fixture
def device() -> SigningKey:
    return generate_signing_key("ES256")


@pytest.fixture
def mdoc(http: httpx.Client, citizen: dict[str, Any], device: SigningKey) -> dict[str, Any]:
    response = http.post(
        "/v1/credentials",
        json={"claims": citizen, "holder_jwk": public_jwk(device.key), "format": "mso_mdoc"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _create(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {"claims": REQUESTED, "purpose": PURPOSE, "format": "mso_mdoc", **overrides}
    response = http.post("/v1/presentation-requests", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _request_object(anonymous: httpx.Client, created: dict[str, Any]) -> dict[str, Any]:
    response = anonymous.get(created["request_uri"], headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def _encryption_key(params: dict[str, Any]) -> dict[str, Any] | None:
    """The verifier's key to encrypt the answer to (direct_post.jwt, dc_api.jwt), if any."""
    if not params["response_mode"].endswith(".jwt"):
        return None
    (key,) = params["client_metadata"]["jwks"]["keys"]
    assert isinstance(key, dict)
    return key


def _device_response(
    params: dict[str, Any],
    mdoc: dict[str, Any],
    device: SigningKey,
    transcript: Any,
    elements: list[str] | None,
) -> dict[str, Any]:
    assert isinstance(device.key, ec.EllipticCurvePrivateKey)
    query = params["dcql_query"]["credentials"][0]
    wanted = elements or [c["path"][1] for c in query["claims"]]
    data = present(
        decode(b64url_decode(mdoc["credential"])),
        doctype=query["meta"]["doctype_value"],
        disclose={NS: wanted},
        device_key=device.key,
        transcript=transcript,
    )
    return {query["id"]: [b64url_encode(data)]}


def _answer(
    anonymous: httpx.Client,
    params: dict[str, Any],
    mdoc: dict[str, Any],
    device: SigningKey,
    *,
    elements: list[str] | None = None,
    nonce: str | None = None,
    thumbprint: bool = True,
) -> httpx.Response:
    """The wallet's answer, encrypted when the request asks for it; ``thumbprint=False``
    leaves the encryption key's thumbprint out of the SessionTranscript, as a wallet that
    ignored it would."""
    key = _encryption_key(params)
    transcript = redirect_session_transcript(
        client_id=params["client_id"],
        nonce=nonce or params["nonce"],
        response_uri=params["response_uri"],
        jwk_thumbprint=b64url_decode(jwk_thumbprint(key)) if key and thumbprint else None,
    )
    vp_token = _device_response(params, mdoc, device, transcript, elements)
    if key is None:
        form = {"vp_token": json_dumps(vp_token), "state": params["state"]}
    else:
        inner = {"vp_token": vp_token, "state": params["state"]}
        form = {"response": encrypt_response(inner, public_jwk=key)}
    return anonymous.post(params["response_uri"], data=form)


def _result(http: httpx.Client, request_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/presentation-requests/{request_id}")
    assert response.status_code == 200
    return response.json()


def test_the_request_asks_for_an_mdoc_by_doctype_and_element(
    http: httpx.Client, anonymous: httpx.Client
) -> None:
    params = _request_object(anonymous, _create(http))
    assert params["dcql_query"] == {
        "credentials": [
            {
                "id": "credential",
                "format": "mso_mdoc",
                "meta": {"doctype_value": national_id.DOCTYPE},
                "claims": [{"path": path} for path in REQUESTED],
            }
        ]
    }
    assert params["client_metadata"]["vp_formats_supported"]["mso_mdoc"] == {
        "issuerauth_alg_values": [-7, -35],
        "deviceauth_alg_values": [-7, -35],
    }
    assert REQUEST_OBJECT_MEDIA_TYPE.startswith("application/")


def test_the_default_request_is_signed_x509_hash_and_encrypted(
    http: httpx.Client, anonymous: httpx.Client
) -> None:
    params = _request_object(anonymous, _create(http))
    assert params["response_mode"] == "direct_post.jwt"
    assert params["client_id"].startswith("x509_hash:")
    assert _encryption_key(params) is not None


@pytest.mark.parametrize("options", [{}, {"response_mode": "direct_post"}])
def test_an_mdoc_answer_is_verified_minimised_then_revoked(
    http: httpx.Client,
    anonymous: httpx.Client,
    mdoc: dict[str, Any],
    device: SigningKey,
    settings: Any,
    options: dict[str, Any],
) -> None:
    created = _create(http, **options)
    params = _request_object(anonymous, created)
    # The wallet discloses more than asked: the relying party still gets only what it asked.
    response = _answer(
        anonymous,
        params,
        mdoc,
        device,
        elements=["given_name_national_character", "birth_date", "family_name"],
    )
    assert response.status_code == 200, response.text
    result = _result(http, created["request_id"])
    assert result["state"] == "completed"
    assert result["verdict"] == {
        "valid": True,
        "credential_status": "valid",
        "issuer": settings.issuer_url,
        "vct": national_id.DOCTYPE,
        "claims": {NS: {"given_name_national_character": "أمينة", "birth_date": "1990-04-12"}},
        "errors": [],
    }

    assert http.post(f"/v1/credentials/{mdoc['credential_id']}/revoke").status_code == 200
    again = _create(http, **options)
    response = _answer(anonymous, _request_object(anonymous, again), mdoc, device)
    assert response.status_code == 400
    assert response.json()["code"] == "presentation_rejected"
    assert [e["code"] for e in response.json()["errors"]] == ["revoked"]
    result = _result(http, again["request_id"])
    assert result["state"] == "failed"
    assert result["verdict"]["claims"] is None


def test_a_device_signature_for_another_nonce_is_refused(
    http: httpx.Client, anonymous: httpx.Client, mdoc: dict[str, Any], device: SigningKey
) -> None:
    created = _create(http)
    params = _request_object(anonymous, created)
    response = _answer(anonymous, params, mdoc, device, nonce="someone-elses-nonce")
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]] == ["invalid_device_signature"]
    assert _result(http, created["request_id"])["verdict"]["claims"] is None


def test_an_encrypted_answer_must_bind_the_encryption_key(
    http: httpx.Client, anonymous: httpx.Client, mdoc: dict[str, Any], device: SigningKey
) -> None:
    # OpenID4VP 1.0 B.2.6.1: with direct_post.jwt the SessionTranscript holds the thumbprint
    # of the verifier's encryption key; a device signature without it is not for this answer.
    created = _create(http)
    params = _request_object(anonymous, created)
    response = _answer(anonymous, params, mdoc, device, thumbprint=False)
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]] == ["invalid_device_signature"]


def _dc_api_request(http: httpx.Client, response_mode: str) -> tuple[str, dict[str, Any]]:
    """A Digital Credentials API request: its id and the parameters the wallet reads."""
    options: dict[str, Any] = {"response_mode": response_mode, "expected_origins": [ORIGIN]}
    if response_mode == "dc_api":
        options["client_id_prefix"] = "redirect_uri"
    created = _create(http, **options)
    entry = created["dc_api_request"]
    if response_mode == "dc_api":
        return created["request_id"], entry["data"]
    # The test stands in for the wallet; the request's signature is checked in test_dc_api.
    token = jws.parse(entry["data"]["request"], typ=frozenset({REQUEST_OBJECT_TYP}))
    return created["request_id"], dict(token.payload)


def _dc_api_answer(
    http: httpx.Client,
    request_id: str,
    params: dict[str, Any],
    mdoc: dict[str, Any],
    device: SigningKey,
    *,
    signed_origin: str,
) -> httpx.Response:
    """What the relying party's page posts: the wallet's answer, device-signed over the
    transcript of ``signed_origin``, with the origin the browser reported (``ORIGIN``)."""
    key = _encryption_key(params)
    transcript = dc_api_session_transcript(
        origin=signed_origin,
        nonce=params["nonce"],
        jwk_thumbprint=b64url_decode(jwk_thumbprint(key)) if key is not None else None,
    )
    vp_token = _device_response(params, mdoc, device, transcript, None)
    data: dict[str, Any] = (
        {"vp_token": vp_token}
        if key is None
        else {"response": encrypt_response({"vp_token": vp_token}, public_jwk=key)}
    )
    return http.post(
        f"/v1/presentation-requests/{request_id}/dc-api-response",
        json={"origin": ORIGIN, "data": data},
    )


@pytest.mark.parametrize("response_mode", ["dc_api.jwt", "dc_api"])
def test_an_mdoc_through_the_dc_api_is_checked_over_the_origin_transcript(
    http: httpx.Client, mdoc: dict[str, Any], device: SigningKey, response_mode: str
) -> None:
    request_id, params = _dc_api_request(http, response_mode)
    accepted = _dc_api_answer(http, request_id, params, mdoc, device, signed_origin=ORIGIN)
    assert accepted.status_code == 200, accepted.text
    result = _result(http, request_id)
    assert result["state"] == "completed"
    assert result["verdict"]["claims"] == {
        NS: {"given_name_national_character": "أمينة", "birth_date": "1990-04-12"}
    }

    # Device-signed over another origin's transcript: not an answer to this relying party.
    request_id, params = _dc_api_request(http, response_mode)
    refused = _dc_api_answer(
        http, request_id, params, mdoc, device, signed_origin="https://evil.example"
    )
    assert refused.status_code == 400
    assert [e["code"] for e in refused.json()["errors"]] == ["invalid_device_signature"]


def test_a_missing_element_is_missing_claims(
    http: httpx.Client, anonymous: httpx.Client, mdoc: dict[str, Any], device: SigningKey
) -> None:
    created = _create(http)
    params = _request_object(anonymous, created)
    response = _answer(anonymous, params, mdoc, device, elements=["birth_date"])
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]] == ["missing_claims"]


def test_an_mdoc_of_another_doctype_is_a_doctype_mismatch(
    http: httpx.Client,
    anonymous: httpx.Client,
    mdoc: dict[str, Any],
    device: SigningKey,
) -> None:
    created = _create(http)
    params = _request_object(anonymous, created)
    # The wallet claims the doctype of the request, over an mdoc of Thiqa's doctype: the
    # device signature covers the claimed doctype, the MSO says otherwise.
    params["dcql_query"]["credentials"][0]["meta"]["doctype_value"] = "org.iso.18013.5.1.mDL"
    response = _answer(anonymous, params, mdoc, device)
    assert response.status_code == 400
    assert sorted(e["code"] for e in response.json()["errors"]) == ["doctype_mismatch"]


@pytest.mark.parametrize(
    "claims",
    [[["given_name"]], [[NS, "given_name", "x"]], [[NS, None]]],
)
def test_mdoc_requests_need_namespace_and_element_paths(
    http: httpx.Client, claims: list[list[Any]]
) -> None:
    response = http.post(
        "/v1/presentation-requests",
        json={"claims": claims, "purpose": PURPOSE, "format": "mso_mdoc"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_an_untrusted_doctype_cannot_be_requested(http: httpx.Client) -> None:
    response = http.post(
        "/v1/presentation-requests",
        json={
            "claims": [["org.iso.18013.5.1", "family_name"]],
            "purpose": PURPOSE,
            "format": "mso_mdoc",
            "vct": "org.iso.18013.5.1.mDL",
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unsupported_vct"
