"""The test wallet's OpenID4VP steps that need no server: reading links and requests, and
choosing what to present. (End to end against a live Thiqa: tests/api/test_openid4vp.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.core import credential as credential_format
from service.core.credential import StatusReference
from service.core.encoding import b64url_encode
from service.core.keys import generate_signing_key, public_jwk
from service.core.openid4vp import PresentationRequest, unsecured_jwt
from service.wallet.openid4vp import (
    PresentationError,
    build_vp_token,
    choose_credential,
    parse_claims,
    parse_invocation,
    read_request,
)
from service.wallet.store import Wallet

JWT = "application/oauth-authz-req+jwt"
VCT = "https://thiqa.example/types/national-id"
RESPONSE_URI = "https://thiqa.example/presentation-responses/" + "r" * 22


def params(**changes: Any) -> dict[str, Any]:
    made = PresentationRequest(
        request_id="r" * 22,
        response_uri=RESPONSE_URI,
        nonce="n" * 22,
        state="s" * 22,
        vct=VCT,
        paths=(("given_name",), ("place_of_birth", "locality")),
        purpose="Open an account",
        client_name="bank-app",
        issued_ms=0,
        expires_ms=300_000,
    ).parameters()
    made.update(changes)
    return {k: v for k, v in made.items() if v is not None}


def as_jwt(values: dict[str, Any]) -> bytes:
    return unsecured_jwt(values, typ="oauth-authz-req+jwt").encode()


def test_invocations() -> None:
    link = (
        "openid4vp://?client_id=redirect_uri%3Ahttps%3A%2F%2Fa.example%2Fr&request_uri="
        "https%3A%2F%2Fa.example%2Fq"
    )
    assert parse_invocation(link).request_uri == "https://a.example/q"
    assert parse_invocation(link).client_id == "redirect_uri:https://a.example/r"
    universal = "https://wallet.example/open?request_uri=https%3A%2F%2Fa.example%2Fq"
    assert parse_invocation(universal).request_uri == "https://a.example/q"
    assert parse_invocation(" https://a.example/q ").client_id is None
    signed = parse_invocation("openid4vp://?client_id=x509_hash%3Aabc&request=eyJ")
    assert (signed.request, signed.request_uri) == ("eyJ", None)
    posted = parse_invocation(link + "&request_uri_method=post")
    assert posted.request_uri_method == "post"
    for bad in (
        "openid4vp://?client_id=x",
        link + "&request_uri_method=put",
        "http://a.example/q",
        "openid4vp://?request_uri=file%3A%2F%2F%2Fetc%2Fpasswd",
        "ftp://a.example/q",
        "openid4vp://?request_uri=https%3A%2F%2Fa&request_uri=https%3A%2F%2Fb",
    ):
        with pytest.raises(PresentationError):
            parse_invocation(bad)


def test_request_read_from_unsigned_object_or_json() -> None:
    from_jwt = read_request(as_jwt(params()), JWT, expected_client_id=None)
    from_json = read_request(
        json.dumps(params()).encode(),
        "application/json; charset=utf-8",
        expected_client_id="redirect_uri:" + RESPONSE_URI,
    )
    assert from_jwt == from_json
    assert from_jwt.paths == (("given_name",), ("place_of_birth", "locality"))
    assert from_jwt.vct_values == (VCT,)
    assert from_jwt.query_id == "credential"
    assert from_jwt.purpose == "Open an account"
    assert from_jwt.client_name == "bank-app"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_id": "redirect_uri:https://evil.example/cb"}, "not the one the client id names"),
        ({"client_id": "x509_san_dns:thiqa.example"}, "names no DNS name of the certificate"),
        ({"client_id": "x509_hash:abc"}, "does not match the request's certificate"),
        ({"client_id": "pre-registered"}, "unsupported client id prefix"),
        (
            {
                "response_uri": "https://evil.example/cb",
                "client_id": "redirect_uri:https://thiqa.example/cb",
            },
            "not the one the client id",
        ),
        ({"response_mode": "fragment"}, "direct_post"),
        ({"response_type": "code"}, "vp_token"),
        ({"redirect_uri": RESPONSE_URI}, "redirect_uri may not"),
        ({"transaction_data": ["e30"]}, "transaction_data"),
        ({"nonce": ""}, "nonce"),
        ({"dcql_query": {"credentials": []}}, "exactly one credential"),
        (
            {"dcql_query": {"credentials": [{"id": "c", "format": "mso_mdoc", "meta": {}}]}},
            "dc\\+sd-jwt",
        ),
        (
            {"dcql_query": {"credentials": [{"id": "c", "format": "dc+sd-jwt", "meta": {}}]}},
            "vct_values",
        ),
        (
            {
                "dcql_query": {
                    "credentials": [
                        {
                            "id": "c",
                            "format": "dc+sd-jwt",
                            "meta": {"vct_values": [VCT]},
                            "claims": [{"path": ["a", None]}],
                        }
                    ]
                }
            },
            "member names",
        ),
        (
            {
                "dcql_query": {
                    "credentials": [
                        {
                            "id": "c",
                            "format": "dc+sd-jwt",
                            "meta": {"vct_values": [VCT]},
                            "claims": [{"id": "a", "path": ["a"]}],
                            "claim_sets": [["a"]],
                        }
                    ]
                }
            },
            "claim_sets",
        ),
    ],
)
def test_requests_this_wallet_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PresentationError, match=message):
        read_request(as_jwt(params(**changes)), JWT, expected_client_id=None)


def test_request_object_checks() -> None:
    good = as_jwt(params())
    with pytest.raises(PresentationError, match="differs from the link"):
        read_request(good, JWT, expected_client_id="redirect_uri:https://other.example/r")
    head, body, _ = good.decode().split(".")
    with pytest.raises(PresentationError, match="unsigned Request Object has a signature"):
        read_request(f"{head}.{body}.c2ln".encode(), JWT, expected_client_id=None)
    signed_head = b64url_encode(json.dumps({"alg": "ES256", "typ": "oauth-authz-req+jwt"}).encode())
    # A signature without a certificate chain proves nothing to this wallet.
    with pytest.raises(PresentationError, match="not trusted"):
        read_request(f"{signed_head}.{body}.c2ln".encode(), JWT, expected_client_id=None)
    jwt_head = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    with pytest.raises(PresentationError, match="typ"):
        read_request(f"{jwt_head}.{body}.".encode(), JWT, expected_client_id=None)
    with pytest.raises(PresentationError, match="not a JWT"):
        read_request(b"abc", JWT, expected_client_id=None)
    with pytest.raises(PresentationError, match="Request Object"):
        read_request(good, "text/html", expected_client_id=None)
    with pytest.raises(PresentationError, match="decoded"):
        read_request(b"\xff", "application/json", expected_client_id=None)


def test_parse_claims() -> None:
    assert parse_claims("given_name, place_of_birth.locality") == (
        ("given_name",),
        ("place_of_birth", "locality"),
    )
    assert parse_claims("") == ()
    with pytest.raises(PresentationError):
        parse_claims("a..b")


def _issue(wallet: Wallet, vct: str, claims: dict[str, Any]) -> str:
    issuer = generate_signing_key()
    key = wallet.new_key()
    token = credential_format.issue(
        claims,
        issuer="https://thiqa.example",
        vct=vct,
        key=issuer,
        status=StatusReference(uri="https://thiqa.example/status-lists/x", idx=1),
        issued_at=1_800_000_000,
        expires_at=1_900_000_000,
        holder_jwk=public_jwk(key.key),
    )
    return wallet.add(token, key).id


def test_choose_credential(tmp_path: Path) -> None:
    wallet = Wallet.open(tmp_path / "w.json")
    national = _issue(wallet, VCT, {"given_name": "Amina", "place_of_birth": {"locality": "Fès"}})
    _issue(
        wallet,
        "https://thiqa.example/types/other",
        {"given_name": "Amina", "place_of_birth": {"locality": "Fès"}},
    )
    no_birthplace = _issue(wallet, VCT, {"given_name": "Amina"})
    request = read_request(as_jwt(params()), JWT, expected_client_id=None)
    assert choose_credential(wallet, request).id == national
    # The tester's pick is taken as is, even one that cannot satisfy the request.
    assert choose_credential(wallet, request, no_birthplace).id == no_birthplace
    with pytest.raises(PresentationError, match="no single credential"):
        choose_credential(wallet, request, "zzzz")
    other = read_request(
        as_jwt(
            params(
                dcql_query={
                    "credentials": [
                        {
                            "id": "c",
                            "format": "dc+sd-jwt",
                            "meta": {"vct_values": [VCT]},
                            "claims": [{"path": ["birthdate"]}],
                        }
                    ]
                }
            )
        ),
        JWT,
        expected_client_id=None,
    )
    with pytest.raises(PresentationError, match="no credential"):
        choose_credential(wallet, other)
    token = json.loads(
        build_vp_token(wallet, wallet.get(national), request, request.paths, now=1_800_000_100)
    )
    assert list(token) == ["credential"]
    (presentation,) = token["credential"]
    assert presentation.count("~") == 4  # issuer JWT, given_name, place_of_birth, locality, KB


def test_one_http_client_factory_and_each_flow_keeps_its_user_agent(tmp_path: Path) -> None:
    """Both flows build their client with the one factory; OpenID4VP still sends the bare
    "wallet" User-Agent it always did (a fixed value that says nothing about the holder)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from service.wallet import openid4vci, openid4vp

    assert openid4vp.new_http is openid4vci.new_http
    with openid4vci.new_http() as client:
        assert client.headers["User-Agent"] == "Thiqa test wallet"
        assert client.follow_redirects is False

    seen: list[str | None] = []

    class Verifier(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("User-Agent"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Verifier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request_uri = f"http://127.0.0.1:{server.server_address[1]}/presentation-requests/x"
        with pytest.raises(PresentationError, match="refused the request"):
            openid4vp.present(request_uri, wallet=Wallet.open(tmp_path / "w.json"))
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["wallet"]
