"""POST /v1/credentials and the status routes, over real HTTP against a real Redis."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import redis

from service.core.encoding import b64url_decode
from service.core.status_list import get_status
from service.settings import Settings
from service.store.clients import Scope
from tests.conftest import add_client


def _payload(credential: str) -> dict[str, Any]:
    return json.loads(b64url_decode(credential.split("~")[0].split(".")[1]))


def _header(credential: str) -> dict[str, Any]:
    return json.loads(b64url_decode(credential.split("~")[0].split(".")[0]))


def _disclosures(credential: str) -> list[list[Any]]:
    return [json.loads(b64url_decode(d)) for d in credential.split("~")[1:-1]]


def _data_keys(redis_client: redis.Redis, settings: Settings) -> set[bytes]:
    """Every key under the test's prefix but the per-minute request counters, which count
    refused requests too (that is their job)."""
    return {
        key for key in redis_client.scan_iter(f"{settings.redis_prefix}:*") if b":rate:" not in key
    }


def test_issues_sd_jwt_vc_with_every_personal_claim_disclosable(
    issued: dict[str, Any], citizen: dict[str, Any], settings: Settings
) -> None:
    credential = issued["credential"]
    assert issued["format"] == "dc+sd-jwt"
    assert credential.endswith("~")
    header, payload = _header(credential), _payload(credential)
    assert header["typ"] == "dc+sd-jwt"
    assert header["alg"] == "ES256"
    assert payload["iss"] == settings.issuer_url
    assert payload["vct"] == settings.national_id_vct
    assert set(payload) == {"iss", "iat", "exp", "vct", "cnf", "status", "_sd_alg", "_sd"}
    assert not set(citizen) & set(payload)
    disclosed_names = {d[1] for d in _disclosures(credential) if len(d) == 3}
    assert set(citizen) <= disclosed_names
    assert payload["status"] == {"status_list": issued["status"]["status_list"]}
    assert issued["status"]["status_list"]["uri"].startswith(f"{settings.issuer_url}/status-lists/")


def test_salts_are_at_least_128_bits_and_unique(issued: dict[str, Any]) -> None:
    salts = [b64url_decode(d[0]) for d in _disclosures(issued["credential"])]
    assert all(len(salt) >= 16 for salt in salts)
    assert len(set(salts)) == len(salts)


def test_arabic_names_are_kept_as_utf8_and_nfc(http: httpx.Client, citizen: dict[str, Any]) -> None:
    decomposed = dict(citizen, given_name="Sai\u0308d", **{"given_name#ar": "سعيد"})
    response = http.post("/v1/credentials", json={"claims": decomposed})
    assert response.status_code == 201
    values = {d[1]: d[2] for d in _disclosures(response.json()["credential"]) if len(d) == 3}
    assert values["given_name"] == "Saïd"
    assert values["family_name#ar"] == "الإدريسي"


def test_thiqa_keeps_no_personal_claim(
    issued: dict[str, Any],
    citizen: dict[str, Any],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    keys = list(redis_client.scan_iter(f"{settings.redis_prefix}:*"))
    assert keys
    stored = b"".join(redis_client.dump(key) or b"" for key in keys)
    for value in ("Amina", "El Idrissi", "ZZ104233", "1990-04-12", "Fès"):
        assert value.encode() not in stored
    assert "أمينة".encode() not in stored


def test_status_entry_is_set_in_the_published_list(
    issued: dict[str, Any], settings: Settings, redis_client: redis.Redis
) -> None:
    ref = issued["status"]["status_list"]
    list_id = ref["uri"].rsplit("/", 1)[1]
    data = redis_client.get(f"{settings.redis_prefix}:{{sl:{list_id}}}:bits")
    assert data is not None
    assert len(data) == settings.status_list_size * 2 // 8
    assert get_status(data, ref["idx"], 2) == 0


def test_get_credential_reports_status_and_lifetime(
    http: httpx.Client, issued: dict[str, Any], settings: Settings
) -> None:
    response = http.get(f"/v1/credentials/{issued['credential_id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "valid"
    assert body["vct"] == settings.national_id_vct
    assert body["expires_at"] == issued["expires_at"]
    assert set(body) == {
        "credential_id",
        "status",
        "vct",
        "issued_at",
        "expires_at",
        "status_changed_at",
    }


def test_status_transitions(http: httpx.Client, issued: dict[str, Any]) -> None:
    cid = issued["credential_id"]
    steps = [
        ("suspend", "suspended"),
        ("suspend", "suspended"),
        ("reinstate", "valid"),
        ("reinstate", "valid"),
        ("revoke", "revoked"),
        ("revoke", "revoked"),
    ]
    for action, expected in steps:
        response = http.post(f"/v1/credentials/{cid}/{action}")
        assert response.status_code == 200, (action, response.text)
        assert response.json() == {"credential_id": cid, "status": expected}
    assert http.get(f"/v1/credentials/{cid}").json()["status"] == "revoked"


@pytest.mark.parametrize("action", ["reinstate", "suspend"])
def test_revoked_credential_cannot_come_back(
    http: httpx.Client, issued: dict[str, Any], action: str
) -> None:
    cid = issued["credential_id"]
    assert http.post(f"/v1/credentials/{cid}/revoke").status_code == 200
    response = http.post(f"/v1/credentials/{cid}/{action}")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "status_conflict"
    assert http.get(f"/v1/credentials/{cid}").json()["status"] == "revoked"


@pytest.mark.parametrize(
    "credential_id",
    ["000000000000.AAAAAAAAAAAAAAAAAAAAAA", "nope", "a" * 64, "..%2F..%2Fetc"],
)
@pytest.mark.parametrize("action", ["revoke", "suspend", "reinstate"])
def test_unknown_credential_is_404_and_writes_nothing(
    http: httpx.Client,
    settings: Settings,
    redis_client: redis.Redis,
    credential_id: str,
    action: str,
) -> None:
    before = _data_keys(redis_client, settings)
    response = http.post(f"/v1/credentials/{credential_id}/{action}")
    assert response.status_code == 404
    assert response.json()["code"] in {"credential_not_found", "not_found"}
    assert _data_keys(redis_client, settings) == before
    assert http.get(f"/v1/credentials/{credential_id}").status_code == 404


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({}, "invalid_claims"),
        ({"given_name": "A", "family_name": "B", "birthdate": "1990-01-01"}, "invalid_claims"),
        (
            {
                "given_name": "A",
                "family_name": "B",
                "birthdate": "2190-01-01",
                "national_id": "ZZ12345",
            },
            "invalid_claims",
        ),
        (
            {
                "given_name": "A",
                "family_name": "B",
                "birthdate": "1990-01-01",
                "national_id": "12345",
            },
            "invalid_claims",
        ),
        (
            {
                "given_name": "A",
                "family_name": "B",
                "birthdate": "1990-01-01",
                "national_id": "ZZ12345",
                "iss": "https://evil.example",
            },
            "invalid_claims",
        ),
        (
            {
                "given_name": "A",
                "family_name": "B",
                "birthdate": "1990-01-01",
                "national_id": "ZZ12345",
                "status": {},
            },
            "invalid_claims",
        ),
        (
            {
                "given_name": "A",
                "family_name": "B",
                "birthdate": "1990-01-01",
                "national_id": "ZZ12345",
                "_sd": [],
            },
            "invalid_claims",
        ),
        (
            {
                "given_name": "A" * 5000,
                "family_name": "B",
                "birthdate": "1990-01-01",
                "national_id": "ZZ12345",
            },
            "invalid_claims",
        ),
        (
            {
                "given_name": "A",
                "family_name": "B",
                "birthdate": "1990-01-01",
                "national_id": "ZZ12345",
                "x": {"a": {"b": {"c": {"d": {}}}}},
            },
            "invalid_claims",
        ),
    ],
)
def test_bad_claims_are_refused_and_nothing_is_allocated(
    http: httpx.Client,
    settings: Settings,
    redis_client: redis.Redis,
    claims: dict[str, Any],
    code: str,
) -> None:
    before = _data_keys(redis_client, settings)
    response = http.post("/v1/credentials", json={"claims": claims})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == code
    assert "A" * 50 not in response.text  # the offending value is not echoed
    assert _data_keys(redis_client, settings) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"claims": "x"}, "invalid_request"),
        ({"claims": {"given_name": "A"}, "unexpected": 1}, "invalid_request"),
        ({"claims": {"given_name": "A"}, "valid_for_days": 0}, "invalid_request"),
        ({"claims": {"given_name": "A"}, "valid_for_days": 99999}, "invalid_request"),
        ({"claims": {"given_name": "A"}, "vct": "https://other.example/type"}, "unsupported_vct"),
    ],
)
def test_bad_issue_requests_have_codes(http: httpx.Client, body: dict[str, Any], code: str) -> None:
    response = http.post("/v1/credentials", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        # A point that is not on P-256 (invalid-curve attack).
        {"kty": "EC", "crv": "P-256", "x": "AQ" + "A" * 41, "y": "AQ" + "A" * 41},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    ],
)
def test_invalid_holder_keys_are_refused(
    http: httpx.Client, citizen: dict[str, Any], jwk: dict[str, str]
) -> None:
    response = http.post("/v1/credentials", json={"claims": citizen, "holder_jwk": jwk})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_holder_key"


def test_private_holder_key_is_refused(http: httpx.Client, citizen: dict[str, Any]) -> None:
    from service.core.keys import generate_signing_key, public_jwk

    key = generate_signing_key()
    jwk = dict(public_jwk(key.key), d="Ur2bNKuBPOrAaxsRnbSH6hIhmNTxSGXshDSUD1a1y7g")
    response = http.post("/v1/credentials", json={"claims": citizen, "holder_jwk": jwk})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_holder_key"


def test_validity_period_is_honoured(http: httpx.Client, citizen: dict[str, Any]) -> None:
    response = http.post("/v1/credentials", json={"claims": citizen, "valid_for_days": 30})
    payload = _payload(response.json()["credential"])
    assert payload["exp"] - payload["iat"] == 30 * 86400


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        ({Scope.VERIFY}, "post", "/v1/credentials", False),
        ({Scope.REVOKE}, "post", "/v1/credentials", False),
        ({Scope.ISSUE}, "post", "/v1/credentials", True),
        ({Scope.ISSUE}, "post", "/v1/credentials/{cid}/revoke", False),
        ({Scope.VERIFY}, "post", "/v1/credentials/{cid}/suspend", False),
        # Another client's credential: only with the admin scope (see the ownership tests).
        ({Scope.REVOKE, Scope.ADMIN}, "post", "/v1/credentials/{cid}/revoke", True),
        ({Scope.ADMIN}, "post", "/v1/credentials/{cid}/revoke", False),
        ({Scope.VERIFY}, "get", "/v1/credentials/{cid}", False),
        ({Scope.REVOKE, Scope.ADMIN}, "get", "/v1/credentials/{cid}", True),
        ({Scope.ISSUE, Scope.ADMIN}, "get", "/v1/credentials/{cid}", True),
        ({Scope.ISSUE, Scope.REVOKE}, "post", "/v1/verify", False),
    ],
)
def test_scopes_are_enforced(
    server: Any,
    settings: Settings,
    issued: dict[str, Any],
    citizen: dict[str, Any],
    scopes: set[Scope],
    method: str,
    path: str,
    allowed: bool,
) -> None:
    key = add_client(settings, "limited", frozenset(scopes))
    url = path.format(cid=issued["credential_id"])
    body = (
        {"claims": citizen}
        if url == "/v1/credentials"
        else ({"credential": issued["credential"]} if url == "/v1/verify" else None)
    )
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
        response = c.request(method, url, json=body)
    if allowed:
        assert response.status_code in (200, 201)
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"


# --- who may change a credential's status ----------------------------------------------------


def _client(server: Any, settings: Settings, name: str, scopes: set[Scope]) -> httpx.Client:
    key = add_client(settings, name, frozenset(scopes))
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


def _stored_status(redis_client: redis.Redis, settings: Settings, issued: dict[str, Any]) -> int:
    ref = issued["status"]["status_list"]
    list_id = ref["uri"].rsplit("/", 1)[1]
    data = redis_client.get(f"{settings.redis_prefix}:{{sl:{list_id}}}:bits")
    assert data is not None
    return get_status(data, ref["idx"], 2)


def test_another_client_cannot_see_or_change_a_credential_it_did_not_issue(
    server: Any, settings: Settings, redis_client: redis.Redis, citizen: dict[str, Any]
) -> None:
    with (
        _client(server, settings, "ministry", {Scope.ISSUE, Scope.REVOKE}) as owner,
        _client(server, settings, "town-hall", {Scope.ISSUE, Scope.REVOKE}) as other,
    ):
        issued = owner.post("/v1/credentials", json={"claims": citizen}).json()
        cid = issued["credential_id"]
        before = {k: redis_client.dump(k) for k in _data_keys(redis_client, settings)}
        for action in ("revoke", "suspend", "reinstate"):
            refused = other.post(f"/v1/credentials/{cid}/{action}")
            # Answered as for a credential that does not exist: its existence is not told.
            assert (refused.status_code, refused.json()["code"]) == (404, "credential_not_found")
        looked = other.get(f"/v1/credentials/{cid}")
        assert (looked.status_code, looked.json()["code"]) == (404, "credential_not_found")
        # Nothing changed, and nothing was written (no audit entry either).
        assert {k: redis_client.dump(k) for k in _data_keys(redis_client, settings)} == before
        assert _stored_status(redis_client, settings, issued) == 0
        # Its own client still can.
        assert owner.post(f"/v1/credentials/{cid}/suspend").json()["status"] == "suspended"
        assert owner.get(f"/v1/credentials/{cid}").json()["status"] == "suspended"


def test_the_admin_scope_crosses_clients(
    server: Any, settings: Settings, redis_client: redis.Redis, citizen: dict[str, Any]
) -> None:
    with (
        _client(server, settings, "ministry", {Scope.ISSUE, Scope.REVOKE}) as owner,
        _client(server, settings, "registry", {Scope.REVOKE, Scope.ADMIN}) as admin,
    ):
        issued = owner.post("/v1/credentials", json={"claims": citizen}).json()
        cid = issued["credential_id"]
        assert admin.get(f"/v1/credentials/{cid}").json()["status"] == "valid"
        response = admin.post(f"/v1/credentials/{cid}/revoke")
        assert response.status_code == 200
        assert response.json() == {"credential_id": cid, "status": "revoked"}
        assert owner.get(f"/v1/credentials/{cid}").json()["status"] == "revoked"
        assert _stored_status(redis_client, settings, issued) == 1
