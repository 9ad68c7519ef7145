"""OAuth-style errors of the wallet-facing endpoints, answered from ``service/errors.py``.

The token and credential endpoints (OpenID4VCI) and the ``direct_post`` response endpoint
(OpenID4VP) answer ``{"error", "error_description"}`` because wallets are written against
those specs; OpenID4VP's answer adds Thiqa's ``code``. Never cached (RFC 6749 §5.1).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api.forms import NO_STORE
from service.errors import OAuthError

__all__ = ["install_oauth_handler", "oauth_body", "oauth_response"]


def oauth_body(exc: OAuthError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.error or exc.code, "error_description": exc.detail}
    if exc.error is not None:
        body["code"] = exc.code
    body.update(exc.extra)
    return body


def oauth_response(exc: OAuthError) -> JSONResponse:
    return JSONResponse(
        oauth_body(exc), status_code=exc.status, headers={**NO_STORE, **exc.headers()}
    )


def _oauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return oauth_response(exc)


def install_oauth_handler(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, _oauth_error)
