"""Verifying another issuer's credentials: a trust list, and its status list fetched, checked
and cached no longer than its ttl. The other issuer is a second Thiqa on localhost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from service.api.server import BackgroundServer, free_port
from service.core import jws
from service.core.encoding import b64url_decode
from service.services.runtime import load_keyring
from service.settings import Settings
from service.store.clients import Scope
from tests.conftest import add_client

from .conftest import codes


@pytest.fixture
def other_issuer(tmp_path: Path, redis_url: str) -> Iterator[tuple[BackgroundServer, str]]:
    settings = Settings(
        redis_url=redis_url,
        keys_dir=tmp_path / "other-keys",
        redis_prefix=f"other{time.monotonic_ns() % 10**9}",
        port=free_port(),
        status_list_size=4096,
        status_list_ttl_seconds=1,
    )
    key = add_client(settings, "registry", frozenset(Scope))
    with BackgroundServer(settings) as server:
        yield server, key


def _trust_list(
    path: Path,
    issuer: BackgroundServer,
    *,
    types: list[str] | None = None,
    hosts: list[str] | None = None,
) -> Path:
    settings = issuer.settings
    jwks = load_keyring(settings).jwks()
    document = {
        "issuers": [
            {
                "issuer": settings.issuer_url,
                "name": "Other national registry",
                "credential_types": types if types is not None else [settings.national_id_vct],
                "status_hosts": hosts if hosts is not None else [f"127.0.0.1:{settings.port}"],
                "allow_private_addresses": True,  # the issuer of these tests is on 127.0.0.1
                "jwks": jwks,
            }
        ]
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def verifier_factory(tmp_path: Path, redis_url: str) -> Iterator[Any]:
    started: list[BackgroundServer] = []
    clients: list[httpx.Client] = []

    def start(trust: Path, **overrides: Any) -> httpx.Client:
        settings = Settings(
            redis_url=redis_url,
            keys_dir=tmp_path / f"v{len(started)}",
            redis_prefix=f"ver{time.monotonic_ns() % 10**9}",
            port=free_port(),
            trusted_issuers=trust,
            status_list_size=4096,
            **{"remote_status_allow_http": True, **overrides},  # the test issuer has no TLS
        )
        key = add_client(settings, "verifier", frozenset({Scope.VERIFY}))
        server = BackgroundServer(settings).start()
        started.append(server)
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in started:
        server.stop()


def _issue(issuer: tuple[BackgroundServer, str], citizen: dict[str, Any]) -> dict[str, Any]:
    server, key = issuer
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
        response = c.post("/v1/credentials", json={"claims": citizen})
        assert response.status_code == 201
        return response.json()


def _change(issuer: tuple[BackgroundServer, str], cid: str, action: str) -> None:
    server, key = issuer
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.post(f"/v1/credentials/{cid}/{action}").status_code == 200


def test_trusted_issuer_credential_verifies_and_revocation_arrives_within_ttl(
    tmp_path: Path,
    other_issuer: tuple[BackgroundServer, str],
    verifier_factory: Any,
    citizen: dict[str, Any],
) -> None:
    verifier = verifier_factory(_trust_list(tmp_path / "trust.yaml", other_issuer[0]))
    issued = _issue(other_issuer, citizen)
    body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
    assert body["valid"] is True, body
    assert body["issuer"] == other_issuer[0].settings.issuer_url
    assert body["claims"] == citizen

    _change(other_issuer, issued["credential_id"], "revoke")
    deadline = time.monotonic() + 5  # ttl is 1 s
    while True:
        body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
        if not body["valid"]:
            break
        assert time.monotonic() < deadline, "revocation not seen within the list's ttl"
        time.sleep(0.2)
    assert codes(body) == ["revoked"]
    assert body["credential_status"] == "revoked"


def test_issuer_not_in_the_trust_list(
    tmp_path: Path,
    other_issuer: tuple[BackgroundServer, str],
    verifier_factory: Any,
    citizen: dict[str, Any],
) -> None:
    empty = tmp_path / "trust.json"
    empty.write_text('{"issuers": []}', encoding="utf-8")
    verifier = verifier_factory(empty)
    issued = _issue(other_issuer, citizen)
    body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
    assert codes(body) == ["unknown_issuer"]


def test_type_the_issuer_is_not_trusted_for(
    tmp_path: Path,
    other_issuer: tuple[BackgroundServer, str],
    verifier_factory: Any,
    citizen: dict[str, Any],
) -> None:
    trust = _trust_list(tmp_path / "t.yaml", other_issuer[0], types=["https://x.example/t"])
    verifier = verifier_factory(trust)
    issued = _issue(other_issuer, citizen)
    body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
    assert codes(body) == ["untrusted_type"]


def test_status_host_not_in_the_trust_list_is_never_fetched(
    tmp_path: Path,
    other_issuer: tuple[BackgroundServer, str],
    verifier_factory: Any,
    citizen: dict[str, Any],
) -> None:
    trust = _trust_list(tmp_path / "t.yaml", other_issuer[0], hosts=["status.example.org"])
    verifier = verifier_factory(trust)
    issued = _issue(other_issuer, citizen)
    body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
    assert codes(body) == ["invalid_status_reference"]


def test_unreachable_status_list_is_unavailable_not_valid(
    tmp_path: Path,
    other_issuer: tuple[BackgroundServer, str],
    verifier_factory: Any,
    citizen: dict[str, Any],
) -> None:
    verifier = verifier_factory(_trust_list(tmp_path / "t.yaml", other_issuer[0]))
    issued = _issue(other_issuer, citizen)
    other_issuer[0].stop()
    body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
    assert body["valid"] is False
    assert codes(body) == ["status_unavailable"]


def test_trust_list_naming_the_wrong_key_refuses_the_credential(
    tmp_path: Path,
    other_issuer: tuple[BackgroundServer, str],
    verifier_factory: Any,
    citizen: dict[str, Any],
) -> None:
    """The trust list lists, under the issuer's kid, a key the issuer does not hold: its
    credentials fail at the signature. (A status list signed by the wrong key is refused
    with ``status_unavailable``: tests/interop/test_reference_issuer.py.)"""
    from service.core.keys import generate_signing_key

    stranger = generate_signing_key()
    path = _trust_list(tmp_path / "t.yaml", other_issuer[0])
    document = yaml.safe_load(path.read_text())
    real = document["issuers"][0]["jwks"]["keys"][0]
    imposter = dict(stranger.verification_key().public_jwk(), kid=real["kid"])
    document["issuers"][0]["jwks"]["keys"] = [imposter]
    path.write_text(yaml.safe_dump(document))
    verifier = verifier_factory(path)
    issued = _issue(other_issuer, citizen)
    # With the imposter key the credential's own signature fails first.
    body = verifier.post("/v1/verify", json={"credential": issued["credential"]}).json()
    assert codes(body) == ["invalid_signature"]


def test_status_list_token_checks(
    other_issuer: tuple[BackgroundServer, str], citizen: dict[str, Any]
) -> None:
    """The published token's sub, typ and signature are what the remote reader checks."""
    issued = _issue(other_issuer, citizen)
    uri = issued["status"]["status_list"]["uri"]
    token = httpx.get(uri).text
    claims = jws.parse(token, typ=frozenset({"statuslist+jwt"})).payload
    assert claims["sub"] == uri
    assert b64url_decode(token.split(".")[2])
