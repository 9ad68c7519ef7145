"""RFC 9457 problem details: every error Thiqa answers, in one shape with a stable ``code``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.metrics import metrics_of
from service.api.schemas import verdict_body
from service.errors import StoreUnavailable, ThiqaError, Unauthenticated

__all__ = ["BODY_PROBLEMS", "PROBLEM_RESPONSES", "Problem", "install_handlers", "problem"]

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("thiqa.api")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class Problem(BaseModel):
    """An RFC 9457 problem. Branch on ``code``; ``detail`` is for people."""

    type: str = Field(examples=["https://thiqa.dev/problems/unauthenticated"])
    title: str
    status: int
    code: str = Field(examples=["unauthenticated"])
    detail: str | None = None


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://thiqa.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail or title,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _thiqa_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ThiqaError)
    extra = {k: v for k, v in exc.extra.items() if k != "verdict"}
    if isinstance(exc, StoreUnavailable):
        # The route template, never the raw path: it may carry an offer or request id.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        log.warning("store unavailable on %s %s", request.method, route)
        metrics = metrics_of(request)
        metrics.store_errors.inc()
        verdict = exc.extra.get("verdict")
        if verdict is not None:
            metrics.observe_verdict(verdict)
            # A verification that could not reach the status store is a verdict too:
            # never valid, and saying why.
            return problem(
                503,
                "status_unavailable",
                "The credential's status could not be checked",
                exc.detail,
                **verdict_body(verdict).model_dump(),
            )
    return problem(exc.status, exc.code, exc.title, exc.detail, **extra)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Pydantic errors echo the offending input; a claim value must never come back or be
    # logged, so only where and what kind of error is kept.
    errors = [
        {"loc": [str(part) for part in err.get("loc", ())], "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem(
        422,
        "invalid_request",
        "The request is not valid",
        "The request body does not match the schema.",
        errors=errors,
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    response = problem(exc.status_code, code, str(exc.detail))
    # Starlette's own headers, such as the Allow of a 405 (RFC 9110 §15.5.6 requires it).
    response.headers.update(exc.headers or {})
    return response


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem(500, "internal_error", "Internal error")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ThiqaError, _thiqa_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def _doc(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


#: What the routes of an API-key router can answer. The body's own refusals are in
#: ``BODY_PROBLEMS``, documented only where there is a body (``openapi_problems.py``).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _doc(f"`{Unauthenticated.code}`: no API key, or an unknown one."),
    403: _doc("`insufficient_scope`: the API key lacks the scope this call needs."),
    429: _doc("`rate_limited`: too many requests for this API key; see `Retry-After`."),
    422: _doc("`invalid_request` and more specific codes: the body is not valid."),
    503: _doc("`store_unavailable`: Redis cannot answer; nothing was changed."),
}

#: The refusals of a request body (``limits.py``), by status: for every operation that
#: takes one, JSON or form, beside any answer the route declares for that status itself.
BODY_PROBLEMS: dict[str, str] = {
    "400": "`invalid_json`: the body is not strict JSON (duplicate names, NaN, too deep).",
    "413": "`request_too_large`: the body is larger than the limit.",
}
