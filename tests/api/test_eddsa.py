"""Ed25519 issuer keys as an option beside ES256; the verifier's allow-list is per key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.server import BackgroundServer, free_port
from service.core import holder, jws
from service.core.encoding import b64url_decode
from service.core.keys import generate_signing_key, public_jwk
from service.services.runtime import load_keyring
from service.settings import Settings
from service.store.clients import Scope
from tests.conftest import add_client


@pytest.fixture
def eddsa(tmp_path: Path, redis_url: str) -> Iterator[tuple[httpx.Client, Settings]]:
    settings = Settings(
        redis_url=redis_url,
        keys_dir=tmp_path / "keys",
        signing_alg="EdDSA",
        redis_prefix=f"ed{time.monotonic_ns() % 10**9}",
        port=free_port(),
        status_list_size=4096,
    )
    key = add_client(settings, "app", frozenset(Scope))
    with (
        BackgroundServer(settings) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        yield client, settings


def test_eddsa_issuer_round_trip(
    eddsa: tuple[httpx.Client, Settings], citizen: dict[str, Any]
) -> None:
    http, _ = eddsa
    wallet = generate_signing_key("EdDSA")
    issued = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(wallet.key)}
    ).json()
    header = json.loads(b64url_decode(issued["credential"].split(".")[0]))
    assert header["alg"] == "EdDSA"
    jwks = http.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    assert jwks[0]["crv"] == "Ed25519"
    presentation = holder.present(
        issued["credential"],
        ["given_name"],
        holder_key=wallet,
        nonce="n",
        audience="a",
        now=int(time.time()),
    )
    body = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": "n", "audience": "a"}
    ).json()
    assert body["valid"] is True
    assert body["claims"] == {"given_name": citizen["given_name"]}


def test_eddsa_key_refuses_es256_header(
    eddsa: tuple[httpx.Client, Settings], citizen: dict[str, Any]
) -> None:
    """A token claiming ES256 under the Ed25519 key's kid: the key decides, not the header."""
    http, settings = eddsa
    issued = http.post("/v1/credentials", json={"claims": citizen}).json()
    jwt, rest = issued["credential"].split("~", 1)
    payload = json.loads(b64url_decode(jwt.split(".")[1]))
    impostor = generate_signing_key("ES256")
    kid = load_keyring(settings).active.kid
    forged = jws.encode(
        payload, impostor, typ="dc+sd-jwt", include_kid=False, extra_header={"kid": kid}
    )
    body = http.post("/v1/verify", json={"credential": forged + "~" + rest}).json()
    assert [e["code"] for e in body["errors"]] == ["unsupported_algorithm"]
