"""``POST /v1/verify`` and ``POST /v1/verify/batch`` answered without FastAPI's routing and
dependency machinery.

Verification is the call government apps make most, and per request the framework's work
(matching some forty routes, resolving dependencies, parsing the body a second time) cost
about as much as the verification itself. This plain ASGI middleware sits innermost, inside
the request observer, the security headers and the body limit, so a verification still gets
its request id, access line, metrics, headers and strict-JSON check; it answers exactly the
two paths and passes everything else on.

Nothing changes for a caller: the body is validated by the same pydantic models (a 422 is
the same problem), errors go to the app's own exception handlers, the routes stay declared in
FastAPI for the OpenAPI document, and both ways share :func:`service.api.routes.verify.answer`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.limits import PARSED_JSON
from service.api.problems import problem_response
from service.api.routes.verify import BATCH_PATH, VERIFY_PATH, answer_batch, answer_one
from service.api.schemas import VerifyBatchRequest, VerifyRequest
from service.api.verify_access import bearer_key
from service.core.encoding import EncodingError, json_loads
from service.errors import InvalidJson

__all__ = ["VerifyLane"]

_MODELS: dict[str, type[BaseModel]] = {VERIFY_PATH: VerifyRequest, BATCH_PATH: VerifyBatchRequest}


@dataclass(frozen=True, slots=True)
class _Template:
    path: str


_TEMPLATES = {path: _Template(path) for path in _MODELS}


class _NotJson(Exception):
    """A body without a Content-Type that is not strict JSON either."""


def _json_media(scope: Scope) -> bool | None:
    """True for a JSON media type, False for another, None when there is no Content-Type."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return bool(media == b"application/json" or media.endswith(b"+json"))
    return None


class VerifyLane:
    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in _MODELS:
            await self.app(scope, receive, send)
            return
        # What the request observer logs and counts by: the route's template.
        scope["route"] = _TEMPLATES[path]
        request = Request(scope, receive)
        try:
            api_key = await bearer_key(request)
            body = await self._body(request, scope, _MODELS[path])
            if path == VERIFY_PATH:
                assert isinstance(body, VerifyRequest)
                content = await answer_one(self.api, api_key, body)
            else:
                assert isinstance(body, VerifyBatchRequest)
                content = await answer_batch(self.api, api_key, body)
        except _NotJson as exc:
            await problem_response(InvalidJson(str(exc)))(scope, receive, send)
            return
        except Exception as exc:
            await self._handled(request, exc, scope, receive, send)
            return
        await _send_json(send, content)

    async def _body(self, request: Request, scope: Scope, model: type[BaseModel]) -> BaseModel:
        if PARSED_JSON in scope:  # strictly parsed by the body limit already
            data: Any = scope[PARSED_JSON]
        else:
            media = _json_media(scope)
            raw = await request.body()
            if media is False:
                data = raw  # not JSON: refused by the model, as FastAPI would
            else:
                try:
                    data = json_loads(raw)
                except EncodingError as exc:
                    raise _NotJson(str(exc)) from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            raise RequestValidationError(errors) from None

    async def _handled(
        self, request: Request, exc: Exception, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The app's own handler for ``exc``, as ExceptionMiddleware would choose it."""
        handlers = self.api.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                response = handler(request, exc)
                if inspect.isawaitable(response):
                    response = await response
                await response(scope, receive, send)
                return
        raise exc


async def _send_json(send: Send, content: Any) -> None:
    body = orjson.dumps(content)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
