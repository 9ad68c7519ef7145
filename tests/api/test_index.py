"""``GET /``: a browser is sent to the documentation, a program gets the entry points."""

from __future__ import annotations

import httpx

from service.api.server import BackgroundServer


def test_a_browser_is_sent_to_the_docs(anonymous: httpx.Client) -> None:
    answer = anonymous.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/docs"


def test_a_program_gets_the_entry_points(anonymous: httpx.Client, server: BackgroundServer) -> None:
    for accept in ("application/json", "*/*", ""):
        answer = anonymous.get("/", headers={"Accept": accept})
        assert answer.status_code == 200, accept
        assert answer.json() == {
            "name": "Thiqa",
            "issuer": server.url,
            "documentation": "/docs",
            "openapi": "/openapi.json",
            "issuer_metadata": "/.well-known/jwt-vc-issuer",
            "credential_issuer_metadata": "/.well-known/openid-credential-issuer",
            "demo": "/demo/",
        }
        # Every entry point it names answers.
        for path in ("/docs", "/openapi.json", "/.well-known/jwt-vc-issuer", "/demo/"):
            assert anonymous.get(path).status_code == 200, path
