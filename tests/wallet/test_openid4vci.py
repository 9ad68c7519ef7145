"""The test wallet against an issuer that misbehaves: whatever the token, nonce or credential
endpoint answers, the tester gets a WalletError (a one-line message, exit 1 from the CLI),
never a traceback. A real HTTP server on this machine plays the broken issuer.
(Against a live Thiqa: tests/cli/test_wallet_cli.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.core.keys import generate_signing_key
from service.wallet.openid4vci import (
    Discovery,
    Offer,
    new_http,
    redeem,
    request_credential,
)
from service.wallet.store import WalletError

#: What the broken issuer answers on every path: (status, content type, body).
ANSWERS: list[tuple[int, str, bytes]] = []


class _Issuer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # the http.server interface names it so
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status, media, body = ANSWERS[0]
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _discovery(base: str, *, nonce: bool) -> Discovery:
    return Discovery(
        credential_issuer=base,
        configuration_id="c",
        vct=f"{base}/t",
        credential_endpoint=f"{base}/credential",
        nonce_endpoint=f"{base}/nonce" if nonce else None,
        token_endpoint=f"{base}/token",
        proof_algs=("ES256",),
    )


BROKEN = [
    pytest.param((200, "text/html", b"<html>maintenance</html>"), id="html"),
    pytest.param((200, "application/json", b"[1, 2]"), id="json-array"),
    pytest.param((200, "application/json", b'{"a": 1, "a": 2}'), id="duplicate-member"),
    pytest.param((200, "application/json", b""), id="empty"),
    pytest.param((400, "text/plain", b"no"), id="error-not-json"),
    pytest.param((400, "application/json", b'"invalid_grant"'), id="error-a-string"),
]


@pytest.mark.parametrize("answer", BROKEN)
def test_a_broken_token_endpoint_is_a_wallet_error(
    issuer: str, answer: tuple[int, str, bytes]
) -> None:
    ANSWERS[:] = [answer]
    offer = Offer(
        credential_issuer=issuer, configuration_ids=("c",), pre_authorized_code="code", tx_code=None
    )
    with new_http(timeout=5) as http, pytest.raises(WalletError, match="token"):
        redeem(offer, _discovery(issuer, nonce=False), http, None)


def test_a_token_of_the_wrong_type_is_a_wallet_error(issuer: str) -> None:
    ANSWERS[:] = [(200, "application/json", b'{"access_token": 5, "token_type": 7}')]
    offer = Offer(
        credential_issuer=issuer, configuration_ids=("c",), pre_authorized_code="code", tx_code=None
    )
    with new_http(timeout=5) as http, pytest.raises(WalletError, match="no Bearer"):
        redeem(offer, _discovery(issuer, nonce=False), http, None)


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce-endpoint", "credential-endpoint"])
@pytest.mark.parametrize("answer", BROKEN)
def test_a_broken_nonce_or_credential_endpoint_is_a_wallet_error(
    issuer: str, answer: tuple[int, str, bytes], nonce: bool
) -> None:
    ANSWERS[:] = [answer]
    with new_http(timeout=5) as http, pytest.raises(WalletError):
        request_credential(
            _discovery(issuer, nonce=nonce), http, "token", generate_signing_key("ES256")
        )
