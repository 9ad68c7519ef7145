"""``GET /``: where to go from here. A browser (it asks for HTML) is sent to the API
documentation; any other client gets a small JSON index of the entry points."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from service.api.negotiation import accepted
from service.settings import Settings

__all__ = ["install_index"]


def install_index(app: FastAPI, settings: Settings) -> None:
    index: dict[str, Any] = {
        "name": "Thiqa",
        "issuer": settings.issuer_url,
        "documentation": "/docs",
        "openapi": "/openapi.json",
        "issuer_metadata": "/.well-known/jwt-vc-issuer",
        "credential_issuer_metadata": "/.well-known/openid-credential-issuer",
    }
    if settings.demo_ui:
        index["demo"] = "/demo/"

    async def root(request: Request) -> Any:
        if accepted(request.headers.get("accept", "")).get("text/html", 0.0) > 0:
            return RedirectResponse("/docs", status_code=303)
        return JSONResponse(index)

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
