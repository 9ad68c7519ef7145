"""A credential issued and presented by the reference library, verified by a live Thiqa.

The reference library (PyPI ``sd-jwt``) issues an SD-JWT VC with its own key (jwcrypto, ES256,
``typ: dc+sd-jwt``, a ``kid``), its holder presents it with a key-binding JWT over Thiqa's
nonce and audience, and Thiqa — which knows that issuer only from its trust list — verifies it
over HTTP. The issuer's Token Status List is served by a small HTTP server in this test, signed
with the same private key, so revocation is seen end to end, and every way the list can be
wrong (another key, garbage, a host the trust list does not name) is checked to be refused
without a guess and without caching anything.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer

from service.api.server import BackgroundServer, free_port
from service.core.keys import SigningKey, generate_signing_key
from service.core.status_list import StatusValue, set_status
from service.core.status_token import sign_status_list, status_list_claims
from service.settings import Settings
from service.store.clients import Scope
from service.store.connection import KeySpace
from service.store.remote_lists import _hash, _uri_hash
from tests.conftest import add_client

from .helpers import signing_key

ISSUER = "https://issuer.reference.example"
VCT = "https://issuer.reference.example/types/pid"
UNLISTED_VCT = "https://issuer.reference.example/types/library-card"
KID = "reference-issuer-2025-01"
NONCE = "0QmWcX3tHk9nA1"
AUDIENCE = "https://verifier.thiqa.example"
TTL = 1
LIST_ENTRIES = 1024

# The reference issuer's key: one cryptography object, seen by the reference library through
# jwcrypto and by the status-list signer through Thiqa's SigningKey.
ISSUER_PRIVATE = ec.generate_private_key(ec.SECP256R1())
ISSUER_JWK = JWK.from_pyca(ISSUER_PRIVATE)
STATUS_SIGNER: SigningKey = signing_key(ISSUER_PRIVATE, kid=KID)
HOLDER_JWK = JWK.from_pyca(ec.generate_private_key(ec.SECP256R1()))


# --- the issuer's status-list host ---------------------------------------------------------


@dataclass
class StatusHost:
    """Serves ``path -> body()`` on 127.0.0.1 and counts every request it receives."""

    routes: dict[str, Callable[[], bytes]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, path: str) -> str:
        return f"http://{self.netloc}{path}"

    def start(self) -> StatusHost:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests[self.path] += 1
                route = host.routes.get(self.path)
                body = route() if route else b"not found"
                self.send_response(200 if route else 404)
                self.send_header("Content-Type", "application/statuslist+jwt")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def status_list_token(data: bytes, uri: str, key: SigningKey = STATUS_SIGNER) -> bytes:
    """A Status List Token made now: each fetch gets a fresh ``iat``."""
    claims = status_list_claims(
        data, uri=uri, issuer=ISSUER, now=int(time.time()), ttl=TTL, lifetime=3600
    )
    return sign_status_list(claims, key).encode("ascii")


def served_list(host: StatusHost, path: str, key: SigningKey = STATUS_SIGNER) -> bytearray:
    """Serve a live 2-bit list at ``path``; changing the returned bytes changes what is served."""
    data = bytearray(LIST_ENTRIES * 2 // 8)
    uri = host.uri(path)
    host.routes[path] = lambda: status_list_token(bytes(data), uri, key)
    return data


# --- a live Thiqa that trusts the reference issuer -------------------------------------------


@dataclass
class Thiqa:
    client: httpx.Client
    prefix: str

    def verify(self, presentation: str) -> tuple[int, dict[str, Any]]:
        response = self.client.post(
            "/v1/verify",
            json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE},
        )
        return response.status_code, response.json()


@pytest.fixture(scope="module")
def status_host() -> Iterator[StatusHost]:
    host = StatusHost().start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def stray_host() -> Iterator[StatusHost]:
    """A second status host the trust list does not name."""
    host = StatusHost().start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def thiqa(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, status_host: StatusHost
) -> Iterator[Thiqa]:
    root = tmp_path_factory.mktemp("thiqa-interop")
    public = ISSUER_JWK.export_public(as_dict=True)
    trust: Path = root / "trust.yaml"
    trust.write_text(
        yaml.safe_dump(
            {
                "issuers": [
                    {
                        "issuer": ISSUER,
                        "name": "Reference library issuer",
                        "credential_types": [VCT],
                        "status_hosts": [status_host.netloc],
                        # The status server of these tests listens on 127.0.0.1.
                        "allow_private_addresses": True,
                        "jwks": {"keys": [{**public, "kid": KID}]},
                    }
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    prefix = f"ri{secrets.token_hex(6)}"
    settings = Settings(
        redis_url=redis_url,
        keys_dir=root / "keys",
        data_dir=root / "data",
        redis_prefix=prefix,
        host="127.0.0.1",
        port=free_port(),
        status_list_size=4096,
        trusted_issuers=trust,
        remote_status_allow_http=True,  # a local test server, without TLS
    )
    key = add_client(settings, "verifier", frozenset({Scope.VERIFY}))
    with (
        BackgroundServer(settings) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as client,
    ):
        yield Thiqa(client=client, prefix=prefix)
    cleanup = redis.Redis.from_url(redis_url)
    for name in cleanup.scan_iter(match=f"{prefix}:*", count=1000):
        cleanup.delete(name)
    cleanup.close()


# --- the reference library as issuer and holder ----------------------------------------------

CLEAR_CLAIMS = {"nationality": "MA"}
DISCLOSED = {
    "given_name": "Amina",
    "given_name#ar": "أمينة",
    "place_of_birth": {"locality": "Fès", "country": "MA"},
}


def reference_issue(status_uri: str, idx: int, *, vct: str = VCT) -> str:
    now = int(time.time())
    user_claims = {
        "iss": ISSUER,
        "iat": now,
        "exp": now + 3600,
        "vct": vct,
        "status": {"status_list": {"idx": idx, "uri": status_uri}},
        **CLEAR_CLAIMS,
        SDObj("given_name"): "Amina",
        SDObj("given_name#ar"): "أمينة",
        SDObj("family_name"): "El Idrissi",
        SDObj("family_name#ar"): "الإدريسي",
        SDObj("birthdate"): "1990-04-12",
        SDObj("place_of_birth"): {SDObj("locality"): "Fès", SDObj("country"): "MA"},
    }
    issuer = SDJWTIssuer(
        user_claims,
        ISSUER_JWK,
        holder_key=HOLDER_JWK,
        sign_alg="ES256",
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": KID},
    )
    return issuer.sd_jwt_issuance


def reference_present(issuance: str) -> str:
    holder = SDJWTHolder(issuance)
    holder.create_presentation(
        {
            "given_name": True,
            "given_name#ar": True,
            "place_of_birth": {"locality": True, "country": True},
        },
        nonce=NONCE,
        aud=AUDIENCE,
        holder_key=HOLDER_JWK,
        sign_alg="ES256",
    )
    return holder.sd_jwt_presentation


def assert_refused(status: int, body: dict[str, Any], code: str) -> None:
    assert status == 200, body
    assert [e["code"] for e in body["errors"]] == [code], body
    assert body["valid"] is False
    assert body["claims"] is None


# --- the tests ------------------------------------------------------------------------------


def test_reference_credential_verifies_then_revocation_arrives_after_ttl(
    thiqa: Thiqa, status_host: StatusHost, redis_url: str
) -> None:
    data = served_list(status_host, "/lists/live")
    uri = status_host.uri("/lists/live")
    presentation = reference_present(reference_issue(uri, 37))

    status, body = thiqa.verify(presentation)
    assert status == 200
    assert body["valid"] is True, body
    assert body["errors"] == []
    assert body["issuer"] == ISSUER
    assert body["vct"] == VCT
    assert body["key_bound"] is True
    assert body["credential_status"] == "valid"
    # Exactly what the holder disclosed, and the one claim the issuer left in the clear.
    assert body["claims"] == {**CLEAR_CLAIMS, **DISCLOSED}
    assert status_host.requests["/lists/live"] == 1

    set_status(data, 37, 2, StatusValue.INVALID)
    time.sleep(TTL + 0.2)  # the cached list may live no longer than its ttl
    status, body = thiqa.verify(presentation)
    assert_refused(status, body, "revoked")
    assert body["credential_status"] == "revoked"
    assert status_host.requests["/lists/live"] == 2


def test_reference_credential_of_an_unlisted_type(thiqa: Thiqa, status_host: StatusHost) -> None:
    served_list(status_host, "/lists/types")
    presentation = reference_present(
        reference_issue(status_host.uri("/lists/types"), 5, vct=UNLISTED_VCT)
    )
    status, body = thiqa.verify(presentation)
    assert_refused(status, body, "untrusted_type")
    assert body["vct"] == UNLISTED_VCT


def _in_cache(redis_url: str, prefix: str, uri: str) -> bool:
    keys = KeySpace(prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        i, h = _hash(ISSUER), _uri_hash(uri, ISSUER)
        return bool(client.exists(keys.remote_list_data(i, h), keys.remote_list_bits(i, h)))
    finally:
        client.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # The issuer's kid, someone else's key: the signature must fail.
        ("/lists/forged-same-kid", "forged"),
        ("/lists/forged-other-kid", "stranger"),
        ("/lists/garbage", "garbage"),
        ("/lists/not-a-jws", "dots"),
        ("/lists/empty", "empty"),
    ],
)
def test_status_list_that_is_not_the_issuers_is_unavailable(
    thiqa: Thiqa, status_host: StatusHost, redis_url: str, path: str, body: str
) -> None:
    uri = status_host.uri(path)
    stranger = generate_signing_key("ES256")
    data = bytes(LIST_ENTRIES * 2 // 8)
    bodies: dict[str, Callable[[], bytes]] = {
        "forged": lambda: status_list_token(data, uri, signing_key(stranger.key, kid=KID)),
        "stranger": lambda: status_list_token(data, uri, stranger),
        "garbage": lambda: secrets.token_bytes(300),
        "dots": lambda: b"eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        "empty": lambda: b"",
    }
    status_host.routes[path] = bodies[body]
    presentation = reference_present(reference_issue(uri, 9))

    status, verdict = thiqa.verify(presentation)
    assert_refused(status, verdict, "status_unavailable")
    assert verdict["credential_status"] is None
    assert status_host.requests[path] == 1
    assert not _in_cache(redis_url, thiqa.prefix, uri)


@pytest.mark.parametrize("where", ["stray-port", "localhost-spelling"])
def test_status_host_not_in_the_trust_list_is_never_contacted(
    thiqa: Thiqa, status_host: StatusHost, stray_host: StatusHost, redis_url: str, where: str
) -> None:
    # Both would serve a perfectly good list if asked.
    served_list(stray_host, "/lists/stray")
    served_list(status_host, "/lists/stray")
    if where == "stray-port":
        uri = stray_host.uri("/lists/stray")
    else:
        # The trusted server itself, named by another host than the trust list's.
        uri = f"http://localhost:{status_host.port}/lists/stray"
    presentation = reference_present(reference_issue(uri, 2))
    before = sum(status_host.requests.values()), sum(stray_host.requests.values())

    status, body = thiqa.verify(presentation)
    assert_refused(status, body, "invalid_status_reference")
    assert (sum(status_host.requests.values()), sum(stray_host.requests.values())) == before
    assert stray_host.requests["/lists/stray"] == 0
    assert not _in_cache(redis_url, thiqa.prefix, uri)
