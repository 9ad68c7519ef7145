"""POST /v1/verify over real HTTP: verdicts, codes, and failing closed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.api.server import BackgroundServer, free_port
from service.core import jws
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.keys import generate_signing_key
from service.services.runtime import load_keyring
from service.settings import Settings
from service.store.clients import Scope
from service.store.connection import KeySpace
from service.store.embedded import EmbeddedRedis
from tests.conftest import add_client

from .conftest import AUDIENCE, NONCE, codes


def _verify(http: httpx.Client, credential: str, **extra: str) -> dict[str, Any]:
    response = http.post("/v1/verify", json={"credential": credential, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is (body["errors"] == [])
    return body


def _resign(
    credential: str,
    settings: Settings,
    change: Callable[[dict[str, Any]], None],
    *,
    typ: str = "dc+sd-jwt",
) -> str:
    """Re-sign an issued credential with the issuer's own key after changing its payload."""
    jwt, rest = credential.split("~", 1)
    payload = json.loads(b64url_decode(jwt.split(".")[1]))
    change(payload)
    return jws.encode(payload, load_keyring(settings).active, typ=typ) + "~" + rest


def test_valid_presentation_returns_only_disclosed_claims(
    http: httpx.Client, present: Callable[..., str], settings: Settings
) -> None:
    body = _verify(http, present(("given_name", "family_name#ar")), nonce=NONCE, audience=AUDIENCE)
    assert body["valid"] is True
    assert body["credential_status"] == "valid"
    assert body["issuer"] == settings.issuer_url
    assert body["vct"] == settings.national_id_vct
    assert body["claims"] == {"given_name": "Amina", "family_name#ar": "الإدريسي"}
    assert body["key_bound"] is True


def test_nested_claim_disclosed_alone(http: httpx.Client, present: Callable[..., str]) -> None:
    body = _verify(
        http, present((("place_of_birth", "locality#ar"),)), nonce=NONCE, audience=AUDIENCE
    )
    assert body["claims"] == {"place_of_birth": {"locality#ar": "فاس"}}


def test_issuance_form_verifies_without_binding_request(
    http: httpx.Client, issued: dict[str, Any], citizen: dict[str, Any]
) -> None:
    body = _verify(http, issued["credential"])
    assert body["valid"] is True
    assert body["claims"] == citizen
    assert body["key_bound"] is False


def test_nonce_requires_key_binding(http: httpx.Client, issued: dict[str, Any]) -> None:
    body = _verify(http, issued["credential"], nonce=NONCE)
    assert codes(body) == ["key_binding_required"]
    assert body["claims"] is None


def test_audience_requires_key_binding(http: httpx.Client, issued: dict[str, Any]) -> None:
    body = _verify(http, issued["credential"], audience=AUDIENCE)
    assert codes(body) == ["key_binding_required"]


def test_wrong_nonce(http: httpx.Client, present: Callable[..., str]) -> None:
    body = _verify(http, present(nonce="other"), nonce=NONCE, audience=AUDIENCE)
    assert codes(body) == ["nonce_mismatch"]
    assert body["claims"] is None


def test_wrong_audience(http: httpx.Client, present: Callable[..., str]) -> None:
    body = _verify(http, present(audience="https://evil.example"), nonce=NONCE, audience=AUDIENCE)
    assert codes(body) == ["audience_mismatch"]


def test_stale_key_binding(
    http: httpx.Client, present: Callable[..., str], settings: Settings
) -> None:
    old = int(time.time()) - settings.kb_max_age_seconds - settings.clock_skew_seconds - 5
    body = _verify(http, present(now=old), nonce=NONCE, audience=AUDIENCE)
    assert codes(body) == ["invalid_key_binding"]


def test_key_binding_by_another_key(http: httpx.Client, issued: dict[str, Any]) -> None:
    from service.core import holder

    thief = generate_signing_key()
    stolen = holder.present(
        issued["credential"],
        ["given_name"],
        holder_key=thief,
        nonce=NONCE,
        audience=AUDIENCE,
        now=int(time.time()),
    )
    body = _verify(http, stolen, nonce=NONCE, audience=AUDIENCE)
    assert codes(body) == ["invalid_key_binding"]


def test_revocation_is_visible_to_the_very_next_verification(
    http: httpx.Client, issued: dict[str, Any], present: Callable[..., str]
) -> None:
    assert _verify(http, present(), nonce=NONCE, audience=AUDIENCE)["valid"] is True
    assert http.post(f"/v1/credentials/{issued['credential_id']}/revoke").status_code == 200
    body = _verify(http, present(), nonce=NONCE, audience=AUDIENCE)
    assert codes(body) == ["revoked"]
    assert body["credential_status"] == "revoked"
    assert body["claims"] is None


def test_a_lost_status_list_fails_closed(
    http: httpx.Client,
    issued: dict[str, Any],
    present: Callable[..., str],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    """Issue 9.6: deleting a list's Redis string must not turn a revoked credential back to
    valid (a missing string reads as zeros, which is "valid")."""
    assert http.post(f"/v1/credentials/{issued['credential_id']}/revoke").status_code == 200
    list_id = issued["status"]["status_list"]["uri"].rsplit("/", 1)[1]
    assert redis_client.delete(KeySpace(settings.redis_prefix).status_bits(list_id)) == 1
    body = _verify(http, present(), nonce=NONCE, audience=AUDIENCE)
    assert body["valid"] is False
    assert codes(body) == ["status_unavailable"]
    assert body["claims"] is None
    assert not redis_client.exists(KeySpace(settings.redis_prefix).status_bits(list_id))


def test_suspension_and_reinstatement(
    http: httpx.Client, issued: dict[str, Any], present: Callable[..., str]
) -> None:
    cid = issued["credential_id"]
    http.post(f"/v1/credentials/{cid}/suspend")
    body = _verify(http, present(), nonce=NONCE, audience=AUDIENCE)
    assert codes(body) == ["suspended"]
    assert body["credential_status"] == "suspended"
    http.post(f"/v1/credentials/{cid}/reinstate")
    assert _verify(http, present(), nonce=NONCE, audience=AUDIENCE)["valid"] is True


def test_tampered_disclosure(http: httpx.Client, issued: dict[str, Any]) -> None:
    parts = issued["credential"].split("~")
    salt, name, _value = json.loads(b64url_decode(parts[1]))
    parts[1] = b64url_encode(json_dumps([salt, name, "Forged"]).encode())
    body = _verify(http, "~".join(parts))
    assert codes(body) == ["invalid_disclosure"]


def test_tampered_payload(http: httpx.Client, issued: dict[str, Any]) -> None:
    jwt, rest = issued["credential"].split("~", 1)
    header, payload, signature = jwt.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["exp"] += 86400 * 3650
    forged = f"{header}.{b64url_encode(json_dumps(claims).encode())}.{signature}~{rest}"
    body = _verify(http, forged)
    assert codes(body) == ["invalid_signature"]
    assert body["credential_status"] is None


def test_expired_credential(http: httpx.Client, issued: dict[str, Any], settings: Settings) -> None:
    def expire(payload: dict[str, Any]) -> None:
        payload["iat"] -= 10 * 86400
        payload["exp"] = int(time.time()) - settings.clock_skew_seconds - 1

    body = _verify(http, _resign(issued["credential"], settings, expire))
    assert codes(body) == ["expired"]


def test_not_yet_valid_credential(
    http: httpx.Client, issued: dict[str, Any], settings: Settings
) -> None:
    def future(payload: dict[str, Any]) -> None:
        payload["nbf"] = int(time.time()) + 3600

    body = _verify(http, _resign(issued["credential"], settings, future))
    assert codes(body) == ["not_yet_valid"]


def test_legacy_typ_is_accepted(
    http: httpx.Client, issued: dict[str, Any], settings: Settings
) -> None:
    legacy = _resign(issued["credential"], settings, lambda p: None, typ="vc+sd-jwt")
    assert _verify(http, legacy)["valid"] is True


def test_foreign_status_list_is_refused(
    http: httpx.Client, issued: dict[str, Any], settings: Settings
) -> None:
    def elsewhere(payload: dict[str, Any]) -> None:
        payload["status"]["status_list"]["uri"] = "https://evil.example/status-lists/1"

    body = _verify(http, _resign(issued["credential"], settings, elsewhere))
    assert codes(body) == ["invalid_status_reference"]


def test_status_index_out_of_range(
    http: httpx.Client, issued: dict[str, Any], settings: Settings
) -> None:
    def beyond(payload: dict[str, Any]) -> None:
        payload["status"]["status_list"]["idx"] = settings.status_list_size

    body = _verify(http, _resign(issued["credential"], settings, beyond))
    assert codes(body) == ["invalid_status_reference"]


def test_credential_from_unknown_issuer(http: httpx.Client, issued: dict[str, Any]) -> None:
    jwt, rest = issued["credential"].split("~", 1)
    payload = json.loads(b64url_decode(jwt.split(".")[1]))
    payload["iss"] = "https://issuer.example"
    forged = jws.encode(payload, generate_signing_key(), typ="dc+sd-jwt") + "~" + rest
    assert codes(_verify(http, forged)) == ["unknown_issuer"]


def test_signed_by_a_key_the_issuer_does_not_have(
    http: httpx.Client, issued: dict[str, Any]
) -> None:
    jwt, rest = issued["credential"].split("~", 1)
    payload = json.loads(b64url_decode(jwt.split(".")[1]))
    forged = jws.encode(payload, generate_signing_key(), typ="dc+sd-jwt") + "~" + rest
    assert codes(_verify(http, forged)) == ["unknown_key"]


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        ("not a credential", "malformed"),
        ("a.b.c", "malformed"),
        ("~", "malformed"),
        ("eyJhbGciOiJub25lIn0.e30.~", "unsupported_algorithm"),
        ("ｅｙＪ~", "malformed"),
    ],
)
def test_garbage_gets_a_code(http: httpx.Client, credential: str, code: str) -> None:
    body = _verify(http, credential)
    assert codes(body) == [code]
    assert body["credential_status"] is None


def test_credential_over_the_size_limit(http: httpx.Client, settings: Settings) -> None:
    body = _verify(http, "a" * (settings.max_credential_bytes + 1))
    assert codes(body) == ["too_large"]


def test_body_over_64_kib_is_413(http: httpx.Client) -> None:
    response = http.post(
        "/v1/verify",
        content=b'{"credential": "' + b"a" * 70_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "request_too_large"


def test_chunked_body_over_the_limit_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"credential": "'
        for _ in range(20):
            yield b"a" * 4096
        yield b'"}'

    response = http.post(
        "/v1/verify", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"credential": ""},
        {"credential": 5},
        {"credential": "x", "nonce": ""},
        {"credential": "x", "extra": True},
    ],
)
def test_invalid_verify_requests_are_422(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post("/v1/verify", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        b"{nope",
        b'{"credential": "a", "credential": "b"}',
        b'{"credential": NaN}',
        b'{"credential": ' + b"[" * 17 + b"]" * 17 + b"}",
        b'{"credential": ' + b"[" * 30000 + b"]" * 30000 + b"}",
    ],
    ids=["syntax", "duplicate", "nan", "deep", "very-deep"],
)
def test_body_that_is_not_strict_json_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/v1/verify", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_json"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    embedded = EmbeddedRedis(tmp_path / "r", durable=True).start()
    yield embedded
    embedded.stop()


def test_redis_down_means_503_never_valid(
    tmp_path: Path, private_redis: EmbeddedRedis, citizen: dict[str, Any]
) -> None:
    settings = Settings(
        redis_url=private_redis.url,
        keys_dir=tmp_path / "keys",
        port=free_port(),
        status_list_size=4096,
    )
    key = add_client(settings, "app", frozenset(Scope))
    with (
        BackgroundServer(settings) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http,
    ):
        issued = http.post("/v1/credentials", json={"claims": citizen}).json()
        credential = issued["credential"]
        assert _verify(http, credential)["valid"] is True

        private_redis.stop()
        response = http.post("/v1/verify", json={"credential": credential})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["valid"] is False
        assert body["code"] == "status_unavailable"
        assert [e["code"] for e in body["errors"]] == ["status_unavailable"]
        assert body["claims"] is None
        assert http.get("/ready").status_code == 503
        issue = http.post("/v1/credentials", json={"claims": citizen})
        assert issue.status_code == 503
        assert issue.json()["code"] == "store_unavailable"
        revoke = http.post(f"/v1/credentials/{issued['credential_id']}/revoke")
        assert revoke.status_code == 503
        assert revoke.json()["code"] == "store_unavailable"

        private_redis.start()
        deadline = time.monotonic() + 5
        while http.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "service did not resume within 5 s"
            time.sleep(0.1)
        # The refused revocation changed nothing.
        assert _verify(http, credential)["valid"] is True
