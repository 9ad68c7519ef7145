"""The browser demo at ``/demo``: issuer console, verifier console and a test wallet, one page.

Three static files shipped in the package (``service/web/demo/``: HTML, one ES module, CSS;
no build step, nothing from a CDN) and two small JSON documents: the synthetic citizens of
``seeds/citizens.json`` for the issuer console to pick from, and where this server lives.

The page calls the same public API any other client calls, with an API key the tester types
in; it gets no privilege from being served here. It is on by default (``THIQA_DEMO_UI``) so
``thiqa serve`` and ``thiqa demo`` show it; a production deployment switches it off, since a
page that asks for API keys is not something a public issuer should serve. Its pages get
their own Content-Security-Policy (:data:`..headers.DEMO_CSP`): scripts, styles and fetches
from this origin only.
"""

from __future__ import annotations

import json
import time
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import RedirectResponse

from service.core.keys import public_jwk
from service.core.x509 import certificate_hash
from service.keyring.certificates import access_host
from service.services.runtime import open_pki
from service.services.seeds import find_seeds
from service.settings import Settings

__all__ = ["DEMO_PREFIX", "install_demo"]

DEMO_PREFIX = "/demo"

_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}


@cache
def _static(name: str) -> bytes:
    return resources.files("service").joinpath(f"web/demo/{name}").read_bytes()


@cache
def _citizens() -> bytes:
    # Only the seeds file: synthetic people, flagged so in the file itself. Nothing else the
    # service holds is ever offered here. A wheel install has no seeds: the page says so.
    try:
        data = json.loads(find_seeds().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return b'{"citizens": []}'
    if data.get("synthetic") is not True:
        return b'{"citizens": []}'
    return json.dumps({"citizens": data["citizens"]}, ensure_ascii=False).encode("utf-8")


def _access(settings: Settings) -> dict[str, Any] | None:
    """What the browser wallet pins of the relying party it trusts (the server's own access
    certificate, issued under the server's root): its x509_hash and public key. A browser
    cannot build X.509 paths itself; the page comes from the server whose root it trusts."""
    pki = open_pki(settings)
    if not pki.has_access:
        return None
    access = pki.load_access(host=access_host(settings.issuer_url), now=int(time.time()))
    return {"x509_hash": certificate_hash(access.leaf), "jwk": public_jwk(access.key.key)}


def install_demo(app: FastAPI, settings: Settings) -> None:
    router = APIRouter(prefix=DEMO_PREFIX, include_in_schema=False)
    made: dict[str, bytes] = {}

    def config() -> bytes:
        # Built on first use: the certificates are made when the server starts, after this.
        if "config" not in made:
            made["config"] = json.dumps(
                {
                    "issuer": settings.issuer_url,
                    "vct": settings.national_id_vct,
                    "access": _access(settings),
                }
            ).encode("utf-8")
        return made["config"]

    async def page_root() -> Response:
        # The page's own links are relative (demo.js, config.json, ../v1/...), so it must be
        # addressed as a directory. A relative Location keeps that true behind a proxy that
        # mounts Thiqa under a path prefix.
        return RedirectResponse("demo/", status_code=308)

    def serve(name: str) -> Any:
        async def endpoint() -> Response:
            return Response(_static(name), media_type=_STATIC[name])

        return endpoint

    async def citizens() -> Response:
        return Response(_citizens(), media_type="application/json")

    async def demo_config() -> Response:
        return Response(config(), media_type="application/json")

    router.add_api_route("", page_root, methods=["GET"])
    router.add_api_route("/", serve("index.html"), methods=["GET"])
    for name in ("demo.js", "demo.css"):
        router.add_api_route(f"/{name}", serve(name), methods=["GET"])
    router.add_api_route("/citizens.json", citizens, methods=["GET"])
    router.add_api_route("/config.json", demo_config, methods=["GET"])
    app.include_router(router)
