"""RFC 9457 problem details: how every problem-style error in ``service/errors.py`` is answered.

One handler per body style: this module answers :data:`~service.errors.BodyStyle.PROBLEM`
errors (and the framework's own refusals, mapped to those classes);
``service/api/oauth_errors.py`` answers the OAuth style of the wallet endpoints.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.metrics import metrics_of
from service.api.oauth_errors import install_oauth_handler
from service.api.schemas import BODY_TAGS, ErrorItem, verdict_body
from service.errors import (
    BadRequest,
    InvalidRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RequestTooLarge,
    StatusUnavailable,
    StoreUnavailable,
    ThiqaError,
    UnsupportedMediaType,
)

__all__ = [
    "BODY_PROBLEMS",
    "MEDIA_TYPE",
    "PROBLEM_RESPONSES",
    "Problem",
    "ProblemItem",
    "install_handlers",
    "problem_body",
    "problem_response",
]

MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://thiqa.dev/problems/"
log = logging.getLogger("thiqa.api")

#: The framework's own refusals (Starlette's HTTPException), by status, as Thiqa's classes.
FRAMEWORK_ERRORS: dict[int, type[ThiqaError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        RequestTooLarge,
        UnsupportedMediaType,
    )
}

#: Pydantic's context members that state a limit, kept in a validation item; every other
#: member (the input, an exception) could repeat what the client sent.
_LIMITS = frozenset(
    {"le", "ge", "lt", "gt", "min_length", "max_length", "multiple_of", "expected", "pattern"}
)


class ProblemItem(BaseModel):
    """One thing wrong with the request: where, what kind, a sentence, and the limit broken.
    Never the value that was sent."""

    loc: list[str] = Field(examples=[["body", "valid_for_days"]])
    type: str = Field(examples=["less_than_equal"])
    message: str = Field(examples=["Input should be less than or equal to 3650"])
    limit: dict[str, int | float | str] | None = Field(default=None, examples=[{"le": 3650}])


class Problem(BaseModel):
    """An RFC 9457 problem. Branch on ``code``; ``detail`` is for people."""

    type: str = Field(description="`https://thiqa.dev/problems/` and the code.")
    title: str = Field(description="Fixed for the code.")
    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(description="The stable code to branch on (README, Errors).")
    detail: str | None = Field(
        default=None, description="For people: what to fix. Never a value that was sent."
    )
    errors: list[ProblemItem | ErrorItem] | None = Field(
        default=None,
        description="With `invalid_request` and `invalid_claims`: every problem found in the "
        "request, at once. With `status_unavailable`: the verdict's errors.",
    )
    path: str | None = Field(
        default=None,
        description="With `invalid_claims`: the first claim refused, as `claims.name`.",
        examples=["claims.birthdate"],
    )
    retry_after: int | None = Field(
        default=None, description="With `rate_limited`: seconds until the next window."
    )


def problem_body(exc: ThiqaError) -> dict[str, Any]:
    return {
        "type": f"{PROBLEM_TYPE_BASE}{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "code": exc.code,
        "detail": exc.detail,
        **exc.extra,
    }


def problem_response(exc: ThiqaError) -> JSONResponse:
    """The answer for ``exc``; also used by the ASGI middleware, which run outside the
    exception handlers."""
    return JSONResponse(
        problem_body(exc), status_code=exc.status, media_type=MEDIA_TYPE, headers=exc.headers()
    )


def _thiqa_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ThiqaError)
    if isinstance(exc, StoreUnavailable):
        # The route template, never the raw path: it may carry an offer or request id.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        log.warning("store unavailable on %s %s", request.method, route)
        metrics = metrics_of(request)
        metrics.store_errors.inc()
        if isinstance(exc, StatusUnavailable):
            # A verification that could not reach the status store is a verdict too: never
            # valid, and saying why.
            metrics.observe_verdict(exc.verdict)
            body = {**problem_body(exc), **verdict_body(exc.verdict).model_dump()}
            return JSONResponse(body, status_code=exc.status, media_type=MEDIA_TYPE)
    return problem_response(exc)


def _is_json(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def validation_items(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as :class:`ProblemItem` bodies. Pydantic's own ``input`` and
    ``url`` are dropped: a claim value must never come back or be logged."""
    items = []
    for err in errors:
        context = err.get("ctx") or {}
        limit = {
            name: value
            for name, value in context.items()
            if name in _LIMITS and isinstance(value, int | float | str)
        }
        loc = [str(part) for part in err.get("loc", ())]
        if loc[:1] == ["body"] and len(loc) > 1 and loc[1] in BODY_TAGS:
            del loc[1]
        item: dict[str, Any] = {
            "loc": loc,
            "type": err.get("type", ""),
            "message": str(err.get("msg", "")),
        }
        if limit:
            item["limit"] = limit
        items.append(item)
    return items


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    body_refused = [e for e in errors if tuple(e.get("loc", ()))[:1] == ("body",)]
    if any(e.get("type") != "missing" for e in body_refused) and not _is_json(request):
        # FastAPI reads a body of any other media type as bytes and then reports that bytes
        # are not an object; the fix the client needs is the header.
        return problem_response(
            UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
        )
    return problem_response(
        InvalidRequest(
            "The request does not match the schema: see errors.",
            errors=validation_items(errors),
        )
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    cls = FRAMEWORK_ERRORS.get(exc.status_code)
    if cls is None:
        cls = BadRequest if exc.status_code < 500 else ThiqaError
    response = problem_response(cls(str(exc.detail)))
    # Starlette's own headers, such as the Allow of a 405 (RFC 9110 §15.5.6 requires it).
    response.headers.update(exc.headers or {})
    return response


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The route template, never the raw path: it may carry an offer or request id.
    route = getattr(request.scope.get("route"), "path", "unmatched")
    # With the exception's type and traceback (the log formatter keeps no message: it may
    # quote a claim).
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        route,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return problem_response(ThiqaError())


def install_handlers(app: FastAPI) -> None:
    """One handler per body style (Starlette picks the handler of the nearest class in the
    error's MRO, so OAuth-style errors never reach the problem handler)."""
    app.add_exception_handler(ThiqaError, _thiqa_error)
    install_oauth_handler(app)
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
    401: _doc(
        "`unauthenticated`: no `Authorization` header, a header that is not "
        "`Bearer <API key>`, or a key that is not accepted (the `detail` says which)."
    ),
    403: _doc("`insufficient_scope`: the API key lacks the scope this call needs."),
    429: _doc("`rate_limited`: too many requests for this API key; see `Retry-After`."),
    422: _doc(
        "`invalid_request` and more specific codes: the body is not valid; `errors` lists "
        "every problem with its message and limit."
    ),
    503: _doc(
        "`store_unavailable`: Redis cannot answer; nothing was changed. Or "
        "`change_not_replicated`: an issuance or status change reached the Redis master but "
        "not enough replicas in time, so it may not have been kept; repeating it is safe."
    ),
}

#: The refusals of a request body (``limits.py``, the validation handler), by status: for
#: every operation that takes one, JSON or form, beside any answer the route declares for that
#: status itself.
BODY_PROBLEMS: dict[str, str] = {
    "400": "`invalid_json`: the body is not strict JSON (duplicate names, NaN, too deep).",
    "413": "`request_too_large`: the body is larger than the limit.",
}
