"""Public endpoints, authentication and the shape of every error."""

from __future__ import annotations

import time

import httpx
import pytest

from service.api.server import BackgroundServer
from service.core.keys import parse_public_jwk
from service.services.runtime import load_keyring
from service.settings import Settings
from service.store.clients import Scope
from tests.conftest import add_client


def test_health(anonymous: httpx.Client) -> None:
    response = anonymous.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_redis_answers(anonymous: httpx.Client) -> None:
    assert anonymous.get("/ready").json() == {"status": "ready"}


def test_issuer_metadata_publishes_public_keys_only(
    anonymous: httpx.Client, settings: Settings
) -> None:
    body = anonymous.get("/.well-known/jwt-vc-issuer").json()
    assert body["issuer"] == settings.issuer_url
    (jwk,) = body["jwks"]["keys"]
    assert "d" not in jwk
    keyring = load_keyring(settings)
    assert jwk["kid"] == keyring.active.kid
    assert parse_public_jwk(jwk).kid == jwk["kid"]  # kid is the RFC 7638 thumbprint
    assert jwk["alg"] == "ES256"


def test_issuer_metadata_follows_the_issuer_path(tmp_path, redis_url) -> None:
    from service.api.server import free_port

    port = free_port()
    settings = Settings(
        redis_url=redis_url,
        keys_dir=tmp_path / "k",
        port=port,
        public_url=f"http://127.0.0.1:{port}/tenant/ma",
    )
    with BackgroundServer(settings), httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        body = c.get("/.well-known/jwt-vc-issuer/tenant/ma").json()
        assert body["issuer"] == f"http://127.0.0.1:{port}/tenant/ma"


def test_docs_and_openapi(anonymous: httpx.Client) -> None:
    assert anonymous.get("/docs").status_code == 200
    spec = anonymous.get("/openapi.json").json()
    for path in (
        "/v1/credentials",
        "/v1/verify",
        "/v1/credentials/{credential_id}/revoke",
        "/health",
        "/ready",
        "/.well-known/jwt-vc-issuer",
    ):
        assert path in spec["paths"]
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer thq_0000000000000000_" + "A" * 43},
        {"Authorization": "Bearer not-a-key"},
    ],
)
def test_missing_or_unknown_key_is_401(anonymous: httpx.Client, headers: dict[str, str]) -> None:
    response = anonymous.post("/v1/verify", json={"credential": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "unauthenticated"
    assert body["status"] == 401
    assert body["type"].endswith("/unauthenticated")


def test_revoked_client_key_stops_working(server: BackgroundServer, settings: Settings) -> None:
    import asyncio

    from service.store.clients import ClientStore
    from service.store.connection import KeySpace, connect

    key = add_client(settings, "short-lived", frozenset({Scope.VERIFY}))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.post("/v1/verify", json={"credential": "x"}).status_code == 200

        async def revoke() -> None:
            assert settings.redis_url is not None
            redis = connect(settings.redis_url.get_secret_value())
            await ClientStore(redis, KeySpace(settings.redis_prefix)).revoke("short-lived")
            await redis.aclose()

        asyncio.run(revoke())
        assert c.post("/v1/verify", json={"credential": "x"}).status_code == 401


def test_unknown_route_is_a_problem(anonymous: httpx.Client) -> None:
    response = anonymous.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_a_problem(anonymous: httpx.Client) -> None:
    response = anonymous.get("/v1/verify")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_rate_limit_per_api_key(tmp_path, redis_url) -> None:
    from service.api.server import free_port

    settings = Settings(
        redis_url=redis_url,
        keys_dir=tmp_path / "k",
        port=free_port(),
        redis_prefix=f"rl{tmp_path.name[-8:].lower().replace('_', '')}",
        rate_limit_per_minute=5,
    )
    key = add_client(settings, "busy", frozenset({Scope.VERIFY}))
    other = add_client(settings, "quiet", frozenset({Scope.VERIFY}))
    with BackgroundServer(settings) as server, httpx.Client(base_url=server.url) as c:
        if time.time() % 60 > 57:  # windows are whole minutes: start well inside one
            time.sleep(60 - time.time() % 60 + 0.1)
        answers = [
            c.post(
                "/v1/verify", json={"credential": "x"}, headers={"Authorization": f"Bearer {key}"}
            )
            for _ in range(7)
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
        assert answers[5].json()["code"] == "rate_limited"
        assert answers[5].headers["content-type"] == "application/problem+json"
        assert 1 <= int(answers[5].headers["retry-after"]) <= 60
        # Another client's quota is its own.
        assert (
            c.post(
                "/v1/verify", json={"credential": "x"}, headers={"Authorization": f"Bearer {other}"}
            ).status_code
            == 200
        )
