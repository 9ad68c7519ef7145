"""GET /status-lists/{id}: the published Token Status List agrees with online answers."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from service.core.keys import parse_public_jwk
from service.core.status_list import StatusValue, get_status
from service.core.status_token import read_status_list
from service.settings import Settings


def _published(anonymous: httpx.Client, uri: str) -> tuple[httpx.Response, bytes]:
    response = anonymous.get(uri, headers={"Accept": "application/statuslist+jwt"})
    assert response.status_code == 200
    jwks = anonymous.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    keys = {jwk["kid"]: parse_public_jwk(jwk, kid=jwk["kid"]) for jwk in jwks}
    token = read_status_list(response.text, keys=keys, uri=uri, now=int(time.time()))
    assert token.bits == 2
    return response, token.data


def test_published_list_is_signed_and_matches_every_change(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any], settings: Settings
) -> None:
    issued = [http.post("/v1/credentials", json={"claims": citizen}).json() for _ in range(3)]
    refs = [c["status"]["status_list"] for c in issued]
    assert len({r["uri"] for r in refs}) == 1
    uri = refs[0]["uri"]
    http.post(f"/v1/credentials/{issued[0]['credential_id']}/revoke")
    http.post(f"/v1/credentials/{issued[1]['credential_id']}/suspend")
    response, data = _published(anonymous, uri)
    assert response.headers["content-type"] == "application/statuslist+jwt"
    ttl = settings.status_list_ttl_seconds
    assert response.headers["cache-control"] == f"public, max-age={ttl}"
    assert len(data) == settings.status_list_size // 4
    expected = [StatusValue.INVALID, StatusValue.SUSPENDED, StatusValue.VALID]
    assert [get_status(data, r["idx"], 2) for r in refs] == expected
    assert sum(1 for byte in data if byte) == 2  # nothing else is set

    http.post(f"/v1/credentials/{issued[1]['credential_id']}/reinstate")
    _, data = _published(anonymous, uri)
    assert get_status(data, refs[1]["idx"], 2) == StatusValue.VALID


def test_token_claims(anonymous: httpx.Client, issued: dict[str, Any], settings: Settings) -> None:
    uri = issued["status"]["status_list"]["uri"]
    body = anonymous.get(uri, headers={"Accept": "application/json"}).json()
    assert body["sub"] == uri
    assert body["iss"] == settings.issuer_url
    assert body["ttl"] == settings.status_list_ttl_seconds
    assert body["exp"] - body["iat"] == settings.status_list_lifetime_seconds
    assert body["status_list"]["bits"] == 2


def test_token_header(anonymous: httpx.Client, issued: dict[str, Any]) -> None:
    import json

    from service.core.encoding import b64url_decode

    token = anonymous.get(issued["status"]["status_list"]["uri"]).text
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header["typ"] == "statuslist+jwt"
    assert header["alg"] == "ES256"
    assert "kid" in header


@pytest.mark.parametrize("list_id", ["000000000000", "nope", "%2e%2e", "a" * 32])
def test_unknown_list_is_404(anonymous: httpx.Client, list_id: str) -> None:
    # "%2e%2e", not "..": a client resolves a literal dot segment before sending, and
    # /status-lists/.. is then simply / (the index); the encoded one reaches the route.
    response = anonymous.get(f"/status-lists/{list_id}")
    assert response.status_code == 404
    assert response.json()["code"] in {"status_list_not_found", "not_found"}


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ("APPLICATION/JSON", True),
        ("Application/Json; charset=utf-8", True),
        ("application/json;q=0, application/statuslist+jwt", False),
        ("application/json;q=0", False),
        ("application/json; Q=0.0", False),
        ("application/json;q=0.9, application/statuslist+jwt;q=0.1", True),
        ("application/json, application/statuslist+jwt", False),
        ("*/*", False),
    ],
)
def test_accept_header_is_read_case_insensitively_with_q_values(
    anonymous: httpx.Client, issued: dict[str, Any], accept: str, json_wanted: bool
) -> None:
    response = anonymous.get(issued["status"]["status_list"]["uri"], headers={"Accept": accept})
    assert response.status_code == 200
    media = "application/json" if json_wanted else "application/statuslist+jwt"
    assert response.headers["content-type"] == media


def test_a_token_is_served_from_memory_until_the_list_changes_and_revalidates_by_etag(
    http: httpx.Client, anonymous: httpx.Client, issued: dict[str, Any]
) -> None:
    uri = issued["status"]["status_list"]["uri"]
    first, second = anonymous.get(uri), anonymous.get(uri)
    assert first.content == second.content  # the same token, not signed again
    etag = first.headers["etag"]
    assert second.headers["etag"] == etag
    unchanged = anonymous.get(uri, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert http.post(f"/v1/credentials/{issued['credential_id']}/suspend").status_code == 200
    changed = anonymous.get(uri, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
