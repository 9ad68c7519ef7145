"""mso_mdoc over the API: issued by POST /v1/credentials, verified by POST /v1/verify, revoked
like an SD-JWT VC. Real HTTP, real Redis, real signatures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.encoding import b64url_decode, b64url_encode
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.mdoc import national_id
from service.core.mdoc.cbor import decode, encode
from service.core.mdoc.device_response import present
from service.core.mdoc.handover import dc_api_session_transcript, redirect_session_transcript
from service.core.mdoc.issuer_signed import check_issuer_signed
from service.core.mdoc.signer import verify_chain
from service.core.mdoc.status_cwt import read_status_list_cwt
from service.core.status_list import get_status
from service.settings import Settings

NS = national_id.NAMESPACE
CLIENT_ID = "x509_hash:Zm9yLXRlc3RzLW9ubHk"
NONCE = "mdoc-nonce-1"
RESPONSE_URI = "https://verifier.example.ma/presentation-responses/1"
TRANSCRIPT = redirect_session_transcript(
    client_id=CLIENT_ID, nonce=NONCE, response_uri=RESPONSE_URI
)


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


def _iaca(http: httpx.Client) -> x509.Certificate:
    response = http.get("/mdoc/iaca.pem")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-pem-file"
    return x509.load_pem_x509_certificate(response.content)


def _present(mdoc: dict[str, Any], device: SigningKey, elements: list[str], **kw: Any) -> str:
    assert isinstance(device.key, ec.EllipticCurvePrivateKey)
    data = present(
        decode(b64url_decode(mdoc["credential"])),
        doctype=national_id.DOCTYPE,
        disclose={NS: elements},
        device_key=device.key,
        transcript=kw.get("transcript", TRANSCRIPT),
    )
    return b64url_encode(data)


def _verify(
    http: httpx.Client, credential: str, *, nonce: str = NONCE, **handover: Any
) -> httpx.Response:
    body = {
        "format": "mso_mdoc",
        "credential": credential,
        "nonce": nonce,
        "handover": {"client_id": CLIENT_ID, "response_uri": RESPONSE_URI, **handover},
    }
    return http.post("/v1/verify", json=body)


def _codes(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["code"] for e in response.json()["errors"]]


def test_issues_a_national_id_mdoc_bound_to_the_device_key(
    http: httpx.Client, mdoc: dict[str, Any], device: SigningKey, settings: Settings
) -> None:
    assert mdoc["format"] == "mso_mdoc"
    assert mdoc["status"]["status_list"]["uri"].startswith(f"{settings.issuer_url}/status-lists/")
    issuer_signed = decode(b64url_decode(mdoc["credential"]))
    checked = check_issuer_signed(
        issuer_signed, doctype=national_id.DOCTYPE, anchors=[_iaca(http)], now=mdoc_now(mdoc)
    )
    assert checked.failures == ()
    assert checked.device_key.public_numbers() == device.key.public_key().public_numbers()  # type: ignore[union-attr]
    assert checked.elements[NS] == {
        "family_name": "El Idrissi",
        "given_name": "Amina",
        "family_name_national_character": "الإدريسي",
        "given_name_national_character": "أمينة",
        "birth_date": date(1990, 4, 12),
        "place_of_birth": {
            "locality": "Fès",
            "locality_national_character": "فاس",
            "country": "MA",
        },
        "sex": 2,
        "nationality": ["MA"],
        "personal_administrative_number": "ZZ104233",
        "issue_date": checked.elements[NS]["issue_date"],
        "expiry_date": checked.elements[NS]["expiry_date"],
    }
    assert checked.status_ref is not None
    assert checked.status_ref.idx == mdoc["status"]["status_list"]["idx"]


def _data_keys(redis_client: redis.Redis, settings: Settings) -> set[bytes]:
    return {k for k in redis_client.scan_iter(f"{settings.redis_prefix}:*") if b":rate:" not in k}


def mdoc_now(mdoc: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(mdoc["issued_at"].replace("Z", "+00:00")).timestamp())


def test_verifies_with_exactly_the_presented_elements_then_revoked(
    http: httpx.Client, mdoc: dict[str, Any], device: SigningKey, settings: Settings
) -> None:
    response = _verify(http, _present(mdoc, device, ["given_name", "birth_date"]))
    body = response.json()
    assert _codes(response) == []
    assert body["valid"] is True
    assert body["issuer"] == settings.issuer_url
    assert body["vct"] == national_id.DOCTYPE
    assert body["claims"] == {NS: {"given_name": "Amina", "birth_date": "1990-04-12"}}
    assert body["key_bound"] is True
    assert body["credential_status"] == "valid"

    assert http.post(f"/v1/credentials/{mdoc['credential_id']}/suspend").status_code == 200
    assert _codes(_verify(http, _present(mdoc, device, ["given_name"]))) == ["suspended"]
    assert http.post(f"/v1/credentials/{mdoc['credential_id']}/revoke").status_code == 200
    revoked = _verify(http, _present(mdoc, device, ["given_name"]))
    assert _codes(revoked) == ["revoked"]
    assert revoked.json()["claims"] is None


def test_a_presentation_for_another_nonce_is_refused(
    http: httpx.Client, mdoc: dict[str, Any], device: SigningKey
) -> None:
    credential = _present(mdoc, device, ["given_name"])
    assert _codes(_verify(http, credential, nonce="another-nonce")) == ["invalid_device_signature"]
    assert _codes(_verify(http, credential, client_id="x509_hash:other")) == [
        "invalid_device_signature"
    ]
    assert _codes(_verify(http, credential, response_uri="https://evil.example/r")) == [
        "invalid_device_signature"
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"format": "mso_mdoc", "credential": "AAAA", "nonce": "n"},  # no handover
        {
            "format": "mso_mdoc",
            "credential": "not base64!",
            "nonce": "n",
            "handover": {"origin": "https://rp.example"},
        },
        {
            "format": "mso_mdoc",
            "credential": "AAAAA",  # 5 characters: no base64url decodes to that
            "nonce": "n",
            "handover": {"origin": "https://rp.example"},
        },
        {
            "format": "mso_mdoc",
            "credential": "AAAA",
            "nonce": "n",
            "handover": {"origin": "https://rp.example", "response_uri": "https://x/"},
        },
        {"format": "mso_mdoc", "credential": "AAAA", "handover": {"origin": "https://rp"}},
    ],
)
def test_an_mdoc_body_the_schema_refuses_is_a_422(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post("/v1/verify", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_base64url_that_is_not_canonical_is_cbor_malformed(http: httpx.Client) -> None:
    # "AB" leaves non-zero padding bits: two encodings would decode to one byte string.
    response = _verify(http, "AB")
    assert _codes(response) == ["cbor_malformed"]
    assert response.json()["valid"] is False


def test_the_dc_api_handover_binds_the_origin(
    http: httpx.Client, mdoc: dict[str, Any], device: SigningKey
) -> None:
    transcript = dc_api_session_transcript(origin="https://rp.example", nonce=NONCE)
    credential = _present(mdoc, device, ["given_name"], transcript=transcript)
    body = {"format": "mso_mdoc", "credential": credential, "nonce": NONCE}
    valid = http.post("/v1/verify", json={**body, "handover": {"origin": "https://rp.example"}})
    assert _codes(valid) == []
    other = http.post("/v1/verify", json={**body, "handover": {"origin": "https://evil.example"}})
    assert _codes(other) == ["invalid_device_signature"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (encode({"version": "1.0"})[:-2], "cbor_truncated"),
        (encode({"version": "1.0"}) + b"\x00", "cbor_trailing_bytes"),
        (bytes.fromhex("bf6776657273696f6e63312e30ff"), "cbor_indefinite_length"),
        (bytes.fromhex("a2 6161 00 6161 01"), "cbor_duplicate_key"),
        (bytes.fromhex("5b7fffffffffffffff00"), "cbor_length_too_large"),
        (b"\x81" * 64 + b"\x00", "cbor_too_deep"),
        (encode([1, 2]), "cbor_wrong_type"),
        (bytes.fromhex("d8 2a 00"), "cbor_wrong_tag"),
        (encode({"version": "2.0", "documents": [], "status": 0}), "mdoc_malformed"),
    ],
)
def test_hostile_cbor_gets_its_code_and_nothing_else(
    http: httpx.Client, data: bytes, code: str
) -> None:
    response = _verify(http, b64url_encode(data))
    body = response.json()
    assert _codes(response) == [code]
    assert body["valid"] is False
    assert body["claims"] is None


def test_mdoc_needs_a_device_key(
    http: httpx.Client, citizen: dict[str, Any], redis_client: redis.Redis, settings: Settings
) -> None:
    before = _data_keys(redis_client, settings)
    response = http.post("/v1/credentials", json={"claims": citizen, "format": "mso_mdoc"})
    assert response.status_code == 422
    assert response.json()["code"] == "device_key_required"
    ed25519 = generate_signing_key("EdDSA")
    response = http.post(
        "/v1/credentials",
        json={"claims": citizen, "holder_jwk": public_jwk(ed25519.key), "format": "mso_mdoc"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_holder_key"
    assert _data_keys(redis_client, settings) == before


def test_an_unknown_format_is_refused(http: httpx.Client, citizen: dict[str, Any]) -> None:
    response = http.post("/v1/credentials", json={"claims": citizen, "format": "jwt_vc_json"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def _cwt_status(anonymous: httpx.Client, iaca: x509.Certificate, uri: str, idx: int) -> int:
    response = anonymous.get(uri, headers={"Accept": "application/statuslist+cwt"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/statuslist+cwt"
    assert response.headers["vary"] == "Accept"
    signed = decode(response.content)
    [der] = [signed.value[1][33]]
    signer = x509.load_der_x509_certificate(der)
    # The x5chain leads to the IACA the mdocs chain to.
    verify_chain([signer], anchors=[iaca], now=int(datetime.now(UTC).timestamp()))
    public = signer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    token = read_status_list_cwt(
        response.content, key=public, uri=uri, now=int(datetime.now(UTC).timestamp())
    )
    return get_status(token.data, idx, token.bits)


def test_the_status_list_in_cwt_form_follows_suspension_and_revocation(
    http: httpx.Client, anonymous: httpx.Client, mdoc: dict[str, Any]
) -> None:
    iaca = _iaca(http)
    uri, idx = mdoc["status"]["status_list"]["uri"], mdoc["status"]["status_list"]["idx"]
    assert _cwt_status(anonymous, iaca, uri, idx) == 0
    assert http.post(f"/v1/credentials/{mdoc['credential_id']}/suspend").status_code == 200
    assert _cwt_status(anonymous, iaca, uri, idx) == 2
    assert http.post(f"/v1/credentials/{mdoc['credential_id']}/reinstate").status_code == 200
    assert _cwt_status(anonymous, iaca, uri, idx) == 0
    assert http.post(f"/v1/credentials/{mdoc['credential_id']}/revoke").status_code == 200
    assert _cwt_status(anonymous, iaca, uri, idx) == 1
    # Both forms are one list: the JWT form says the same.
    jwt_form = anonymous.get(uri, headers={"Accept": "application/statuslist+jwt"})
    assert jwt_form.headers["content-type"] == "application/statuslist+jwt"


def test_the_jwt_form_stays_the_default(anonymous: httpx.Client, mdoc: dict[str, Any]) -> None:
    uri = mdoc["status"]["status_list"]["uri"]
    for accept in ("*/*", "application/statuslist+jwt, application/statuslist+cwt;q=0.5"):
        response = anonymous.get(uri, headers={"Accept": accept})
        assert response.headers["content-type"] == "application/statuslist+jwt", accept


def test_the_cwt_form_is_published_like_the_jwt_form(
    anonymous: httpx.Client, mdoc: dict[str, Any]
) -> None:
    # Built with the JWT form, off the event loop, served from memory: its own ETag and 304.
    uri = mdoc["status"]["status_list"]["uri"]
    cwt = anonymous.get(uri, headers={"Accept": "application/statuslist+cwt"})
    jwt = anonymous.get(uri, headers={"Accept": "application/statuslist+jwt"})
    assert cwt.headers["etag"] != jwt.headers["etag"]
    assert cwt.headers["cache-control"].startswith("public, max-age=")
    again = anonymous.get(
        uri,
        headers={"Accept": "application/statuslist+cwt", "If-None-Match": cwt.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.content == b""
