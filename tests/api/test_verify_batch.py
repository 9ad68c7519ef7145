"""POST /v1/verify/batch: one verdict per presentation, in order, with the codes and audit of
POST /v1/verify; and what verification shares with it (one round trip, batched audit)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from service.api.app import create_app
from service.api.auditing import AuditBatches
from service.api.server import BackgroundServer, free_port
from service.settings import Settings
from service.store.audit import AuditEntry
from service.store.clients import Scope
from service.store.connection import KeySpace
from tests.conftest import add_client

from .conftest import AUDIENCE, NONCE, codes


def _batch(http: httpx.Client, presentations: list[dict[str, Any]]) -> httpx.Response:
    return http.post("/v1/verify/batch", json={"presentations": presentations})


def _verified(redis_client: redis.Redis, settings: Settings, count: int) -> list[AuditEntry]:
    stream = KeySpace(settings.redis_prefix).audit_verifications()
    deadline = time.monotonic() + 5
    while redis_client.xlen(stream) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return [AuditEntry.from_stream(i, f) for i, f in redis_client.xrange(stream)]


def test_one_verdict_each_in_order_with_the_codes_of_single_calls(
    http: httpx.Client,
    issued: dict[str, Any],
    present: Callable[..., str],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    good = {"credential": present(), "nonce": NONCE, "audience": AUDIENCE}
    wrong_nonce = {"credential": present(), "nonce": "another", "audience": AUDIENCE}
    garbage = {"credential": "not-a-credential"}
    unbound = {"credential": issued["credential"]}
    batch = [good, wrong_nonce, garbage, unbound, good]
    response = _batch(http, batch)
    assert response.status_code == 200
    verdicts = response.json()["verdicts"]
    singles = [http.post("/v1/verify", json=item).json() for item in batch]
    assert [codes(v) for v in verdicts] == [[], ["nonce_mismatch"], ["malformed"], [], []]
    assert verdicts == singles
    assert verdicts[0]["claims"] == {"given_name": "Amina", "family_name#ar": "الإدريسي"}

    assert http.post(f"/v1/credentials/{issued['credential_id']}/revoke").status_code == 200
    after = _batch(http, [good, unbound]).json()["verdicts"]
    assert [codes(v) for v in after] == [["revoked"], ["revoked"]]
    # Audited like single calls: one entry per verdict whose signature held (8 + 8 + 2).
    entries = _verified(redis_client, settings, 4 + 4 + 2)
    assert len(entries) == 10
    assert [e.result for e in entries[-2:]] == [("revoked",), ("revoked",)]
    assert {e.client for e in entries} == {"test-app"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"presentations": []}, 422, "invalid_request"),
        ({"presentations": [{"credential": "x"}] * 101}, 422, "invalid_request"),
        ({"presentations": [{"credential": "x", "extra": 1}]}, 422, "invalid_request"),
        ({"presentations": "x"}, 422, "invalid_request"),
        ({"presentations": [{"credential": "x" * 6000}] * 100}, 413, "request_too_large"),
    ],
    ids=["empty", "over-100", "unknown-member", "not-a-list", "over-512-kib"],
)
def test_bad_batches_are_refused(
    http: httpx.Client, body: dict[str, Any], status: int, code: str
) -> None:
    response = http.post("/v1/verify/batch", json=body)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_a_batch_over_the_single_call_limit_but_within_its_own_is_verified(
    http: httpx.Client, present: Callable[..., str]
) -> None:
    item = {"credential": present(), "nonce": NONCE, "audience": AUDIENCE}
    count = 65 * 1024 // len(item["credential"]) + 1  # over the 64 KiB of other routes
    response = _batch(http, [item] * count)
    assert response.status_code == 200
    assert [v["valid"] for v in response.json()["verdicts"]] == [True] * count


def test_the_batch_needs_the_verify_scope_and_a_live_key(
    server: BackgroundServer, settings: Settings, present: Callable[..., str]
) -> None:
    item = {"credential": present(), "nonce": NONCE, "audience": AUDIENCE}
    issuer_only = add_client(settings, "issuer-only", frozenset({Scope.ISSUE}))
    with httpx.Client(base_url=server.url) as client:
        anonymous = client.post("/v1/verify/batch", json={"presentations": [item]})
        assert anonymous.status_code == 401
        wrong = client.post(
            "/v1/verify/batch",
            json={"presentations": [item]},
            headers={"Authorization": f"Bearer {issuer_only}"},
        )
        assert wrong.status_code == 403
        assert wrong.json()["code"] == "insufficient_scope"


def test_a_revoked_client_is_refused_at_once_by_every_process(
    settings: Settings, present: Callable[..., str], redis_client: redis.Redis
) -> None:
    """Two servers (as two worker processes would be) have each seen the key verify; once it
    is revoked in Redis, the very next request to either is 401: the key's check goes with
    every verification's own round trip, nothing is cached in between."""
    key = add_client(settings, "soon-gone", frozenset({Scope.VERIFY}))
    item = {"credential": present(), "nonce": NONCE, "audience": AUDIENCE}
    # Other ports, the same public URL: one issuer, as two workers behind one address are.
    one, other = (
        settings.model_copy(update={"port": free_port(), "public_url": settings.issuer_url})
        for _ in range(2)
    )
    with BackgroundServer(one) as first, BackgroundServer(other) as second:
        clients = [
            httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {key}"})
            for s in (first, second)
        ]
        for client in clients:
            for path, body in (
                ("/v1/verify", item),
                ("/v1/verify/batch", {"presentations": [item]}),
            ):
                assert client.post(path, json=body).status_code == 200
        keys = KeySpace(settings.redis_prefix)
        key_id = key.split("_")[1]
        assert redis_client.delete(keys.api_key(key_id)) == 1  # what `thiqa clients revoke` does
        for client in clients:
            assert client.post("/v1/verify", json=item).status_code == 401
            batch = client.post("/v1/verify/batch", json={"presentations": [item]})
            assert batch.status_code == 401
            client.close()


def test_a_clean_shutdown_writes_every_pending_audit_entry(
    settings: Settings, citizen: dict[str, Any], redis_client: redis.Redis
) -> None:
    key = add_client(settings, "app", frozenset(Scope))
    app = create_app(settings)
    # Entries would wait an hour for their batch: only the shutdown can write them.
    app.state.audit_batches = AuditBatches(app.state.metrics, max_delay=3600)
    stream = KeySpace(settings.redis_prefix).audit_verifications()
    with (
        BackgroundServer(settings, app=app) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        issued = http.post("/v1/credentials", json={"claims": citizen}).json()
        item = {"credential": issued["credential"]}
        for _ in range(3):
            assert http.post("/v1/verify", json=item).json()["valid"] is True
        assert http.post("/v1/verify/batch", json={"presentations": [item] * 7}).status_code == 200
        assert redis_client.xlen(stream) == 0  # still pending
    entries = [AuditEntry.from_stream(i, f) for i, f in redis_client.xrange(stream)]
    assert len(entries) == 10
    assert {(e.action, e.client, e.result) for e in entries} == {
        ("credential.verified", "app", ("valid",))
    }


def test_the_batch_is_documented_in_openapi(anonymous: httpx.Client) -> None:
    document = anonymous.get("/openapi.json").json()
    batch = document["paths"]["/v1/verify/batch"]["post"]
    schema = batch["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/VerifyBatchRequest"}
    assert batch["security"] == [{"HTTPBearer": []}]
    assert {"200", "401", "403", "413", "422", "429", "503"} <= set(batch["responses"])
    presentations = document["components"]["schemas"]["VerifyBatchRequest"]["properties"]
    assert presentations["presentations"]["maxItems"] == 100
    single = document["paths"]["/v1/verify"]["post"]
    assert single["security"] == [{"HTTPBearer": []}]
