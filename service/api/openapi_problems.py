"""The OpenAPI document, completed with the problem details every route can answer.

FastAPI documents a route's request-validation errors in its own shape (``HTTPValidationError``
as ``application/json``) and says nothing of answers that come from outside the route: the body
limit (413), a method the path does not have (405), a problem for a status the route did not
list. Thiqa answers every one of those as an RFC 9457 problem (``problems.py``), so the
document must say so, or a client generated from it, or a schema checker, meets answers the
contract never mentioned:

* an operation that takes a body lists the body's refusals (``BODY_PROBLEMS``: 400
  ``invalid_json``, 413), unless it declares its own answer for that status; an operation
  without a body lists neither;
* every error response (4xx, 5xx) lists ``application/problem+json`` with the Problem schema,
  beside whatever the route declared (the OpenID4VCI endpoints' OAuth errors stay as they are);
* FastAPI's validation-error body, which Thiqa never sends, is replaced by the problem it does
  send (``invalid_request``);
* a ``default`` response covers every other status with a problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from service.api.problems import BODY_PROBLEMS, MEDIA_TYPE, Problem

__all__ = ["document_problems"]

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    content = response.get("content") or {}
    return list(content) == ["application/json"] and (
        content["application/json"].get("schema", {}).get("$ref") == _FASTAPI_VALIDATION_REF
    )


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem answers to an OpenAPI document, in place; returns it."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for status, description in BODY_PROBLEMS.items():
                    responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if not (status == "default" or status[:1] in ("4", "5")):
                    continue
                if _is_fastapi_validation(response):
                    response["description"] = (
                        "`invalid_request`: the request does not match the schema."
                    )
                    response["content"] = {}
                response.setdefault("content", {}).setdefault(MEDIA_TYPE, {})
                response["content"][MEDIA_TYPE].setdefault("schema", _PROBLEM_REF)
            responses.setdefault(
                "default",
                {
                    "description": "Any other error, as a problem (RFC 9457) with a stable `code`.",
                    "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}},
                },
            )
            # Readers (and /docs) see the answers in document order: by status, default last.
            operation["responses"] = dict(
                sorted(responses.items(), key=lambda item: (item[0] == "default", item[0]))
            )
    # FastAPI's validation shapes, now unreferenced, would only mislead a reader.
    for name in ("HTTPValidationError", "ValidationError"):
        others = {k: v for k, v in schemas.items() if k != name}
        if f'"#/components/schemas/{name}"' not in json.dumps([schema.get("paths"), others]):
            schemas.pop(name, None)
    return schema


def document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed document (built once, then cached)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build())
        return app.openapi_schema

    # FastAPI's documented way to extend the schema is to replace this method on the app.
    app.openapi = openapi  # type: ignore[method-assign]
