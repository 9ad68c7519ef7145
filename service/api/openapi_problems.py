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
* every error response (4xx, 5xx) is ``application/problem+json`` with the Problem schema,
  but where the route declared the wallet protocol's OAuth-style body, which is the answer;
* FastAPI's validation-error body, which Thiqa never sends, is replaced by the problem it does
  send (``invalid_request``);
* a ``default`` response covers every other status with a problem;
* an operation that takes a JSON body lists 415 ``unsupported_media_type``;
* ``Problem.code`` is an enum of the real problem codes (``service/errors.py``), and every
  error response carries an example per code it can answer, built from the error classes
  (the codes its description names, else every code of its status), so no example can show a
  code, title or status the service never sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

from fastapi import FastAPI

from service.api.oauth_errors import oauth_body
from service.api.problems import BODY_PROBLEMS, MEDIA_TYPE, Problem, problem_body
from service.api.schemas import verdict_body
from service.core.reasons import Failure, Reason
from service.core.verify import Verdict
from service.errors import (
    BodyStyle,
    DirectPostError,
    InvalidClaims,
    InvalidRequest,
    OAuthError,
    PresentationRejected,
    RateLimited,
    StatusUnavailable,
    ThiqaError,
    UnsupportedMediaType,
    wire_errors,
)

__all__ = ["document_problems"]

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_CODE = re.compile(r"`([a-z][a-z0-9_]*)`")
#: The verdict a verification that could not reach Redis carries.
_UNCHECKED = Verdict(failures=(Failure.of(Reason.STATUS_UNAVAILABLE),))
_UNSUPPORTED_MEDIA_TYPE = (
    f"`{UnsupportedMediaType.code}`: the body was not sent as `Content-Type: application/json`."
)


def _example(cls: type[ThiqaError]) -> dict[str, Any]:
    """What ``cls`` looks like on the wire, with typical extras."""
    error: ThiqaError
    if cls is RateLimited:
        error = RateLimited(retry_after=42)
    elif cls is StatusUnavailable:
        error = StatusUnavailable(verdict=_UNCHECKED)
    elif cls is InvalidClaims:
        error = InvalidClaims(
            "claims.birthdate: must be a past date as YYYY-MM-DD",
            path="claims.birthdate",
            errors=[
                {
                    "loc": ["body", "claims", "birthdate"],
                    "type": "invalid_value",
                    "message": "must be a past date as YYYY-MM-DD",
                }
            ],
        )
    elif cls is InvalidRequest:
        error = InvalidRequest(
            "The request does not match the schema: see errors.",
            errors=[
                {
                    "loc": ["body", "valid_for_days"],
                    "type": "less_than_equal",
                    "message": "Input should be less than or equal to 3650",
                    "limit": {"le": 3650},
                }
            ],
        )
    elif cls is PresentationRejected:
        error = PresentationRejected(
            errors=[{"code": "revoked", "message": "The credential has been revoked."}]
        )
    else:
        error = cls()
    if isinstance(error, OAuthError):
        return oauth_body(error)
    body = problem_body(error)
    if isinstance(error, StatusUnavailable):
        body |= verdict_body(_UNCHECKED).model_dump()
    return body


def _examples(classes: Iterable[type[ThiqaError]]) -> dict[str, Any]:
    return {
        cls.code: {"summary": f"{cls.status} {cls.code}", "value": _example(cls)} for cls in classes
    }


def _answering(
    status: str, description: str, family: Callable[[type[ThiqaError]], bool]
) -> list[type[ThiqaError]]:
    """The error classes of ``family`` a response documents: those with its status that its
    description names, else all with its status."""
    if not status.isdigit():
        return [ThiqaError] if family(ThiqaError) else []
    candidates = [cls for cls in wire_errors() if cls.status == int(status) and family(cls)]
    named = set(_CODE.findall(description))
    chosen = [cls for cls in candidates if cls.code in named]
    return chosen or candidates


def _is_problem(cls: type[ThiqaError]) -> bool:
    return cls.style is BodyStyle.PROBLEM


def _family_of(schema: dict[str, Any]) -> Callable[[type[ThiqaError]], bool] | None:
    """The OAuth error classes a documented OAuth body schema stands for."""
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    if name == "WalletErrorBody":
        return lambda cls: issubclass(cls, DirectPostError)
    if name == "OAuthErrorBody":
        return lambda cls: issubclass(cls, OAuthError) and not issubclass(cls, DirectPostError)
    return None


def _document_error_schemas(schemas: dict[str, Any]) -> None:
    problem = schemas["Problem"]
    codes = sorted({cls.code for cls in wire_errors() if cls.style is BodyStyle.PROBLEM})
    problem["properties"]["code"] = {
        "type": "string",
        "enum": codes,
        "title": "Code",
        "description": "The stable code to branch on (README, Errors).",
    }
    # The wallet endpoints' bodies, each with the codes it can carry.
    token_and_credential = [
        cls
        for cls in wire_errors()
        if issubclass(cls, OAuthError) and not issubclass(cls, DirectPostError)
    ]
    direct_post = [cls for cls in wire_errors() if issubclass(cls, DirectPostError)]
    if "OAuthErrorBody" in schemas:
        error = schemas["OAuthErrorBody"]["properties"]["error"]
        error["enum"] = sorted({cls.code for cls in token_and_credential})
        error.pop("examples", None)
    if "WalletErrorBody" in schemas:
        properties = schemas["WalletErrorBody"]["properties"]
        properties["error"]["enum"] = sorted({cls.error or cls.code for cls in direct_post})
        properties["code"]["enum"] = sorted({cls.code for cls in direct_post})
        properties["error"].pop("examples", None)
        properties["code"].pop("examples", None)


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    content = response.get("content") or {}
    return list(content) == ["application/json"] and (
        content["application/json"].get("schema", {}).get("$ref") == _FASTAPI_VALIDATION_REF
    )


def complete(schema: dict[str, Any], *, own_json_paths: Collection[str] = ()) -> dict[str, Any]:
    """Add the problem answers to an OpenAPI document, in place; returns it.

    ``own_json_paths``: operations that read their JSON body themselves and answer its
    refusals in their protocol's shape (so no 415 problem is documented for them)."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        # The models Problem refers to become components of their own.
        for name, definition in problem_schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas["Problem"] = problem_schema
    _document_error_schemas(schemas)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            json_request = "application/json" in operation.get("requestBody", {}).get("content", {})
            if "requestBody" in operation:
                for status, description in BODY_PROBLEMS.items():
                    responses.setdefault(status, {"description": description})
                body_types = operation["requestBody"].get("content", {})
                if "application/json" in body_types and path not in own_json_paths:
                    responses.setdefault("415", {"description": _UNSUPPORTED_MEDIA_TYPE})
            for status, response in responses.items():
                if not (status == "default" or status[:1] in ("4", "5")):
                    continue
                if _is_fastapi_validation(response):
                    response["description"] = (
                        "`invalid_request`: the request does not match the schema."
                    )
                    response["content"] = {}
                content = response.setdefault("content", {})
                json_body = content.get("application/json", {}).get("schema", {})
                if json_body == _PROBLEM_REF:
                    # FastAPI lists a declared model as application/json; problems are
                    # always sent as application/problem+json.
                    del content["application/json"]
                elif _family_of(json_body) is not None and not (
                    # On an API-key endpoint (/v1) the body reader's refusals (invalid_json)
                    # are problems, beside the protocol's answers (the DC API answer
                    # endpoint); the wallet endpoints answer theirs in OAuth style too.
                    status in BODY_PROBLEMS and json_request and path.startswith("/v1/")
                ):
                    continue  # the wallet protocol's own error body, and only that
                content.setdefault(MEDIA_TYPE, {}).setdefault("schema", _PROBLEM_REF)
            responses.setdefault(
                "default",
                {
                    "description": "Any other error, as a problem (RFC 9457) with a stable `code`.",
                    "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}},
                },
            )
            for status, response in responses.items():
                if not (status == "default" or status[:1] in ("4", "5")):
                    continue
                description = response.get("description", "")
                for media, body in response.get("content", {}).items():
                    family = _is_problem if media == MEDIA_TYPE else _family_of(body["schema"])
                    if family is None:
                        continue
                    body.pop("example", None)
                    examples = _examples(_answering(status, description, family))
                    if examples:
                        body["examples"] = examples
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


def document_problems(app: FastAPI, *, own_json_paths: Collection[str] = ()) -> None:
    """Make ``app.openapi()`` return the completed document (built once, then cached)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build(), own_json_paths=own_json_paths)
        return app.openapi_schema

    # FastAPI's documented way to extend the schema is to replace this method on the app.
    app.openapi = openapi  # type: ignore[method-assign]
