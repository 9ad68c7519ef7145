"""``GET /status-lists/{id}`` answered without FastAPI's routing and dependency machinery.

Relying parties everywhere fetch these lists; each fetch is a version check in Redis and a
token from memory (:mod:`service.services.status_publishing`), so the framework's own work
was most of its cost. Like :mod:`service.api.verify_lane`, this plain ASGI middleware sits
inside the request observer and the security headers and answers only well-formed fetches
(a list id of at most 32 characters, no further path); anything else goes on to FastAPI,
and errors go to the app's own exception handlers. The route stays declared for OpenAPI
and answers the same way through :func:`service.api.routes.status_lists.answer`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.routes.status_lists import answer

__all__ = ["StatusListLane"]

_PREFIX = "/status-lists/"
_MAX_ID = 32


@dataclass(frozen=True, slots=True)
class _Template:
    path: str


_TEMPLATE = _Template("/status-lists/{list_id}")


class StatusListLane:
    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        list_id = path[len(_PREFIX) :]
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not path.startswith(_PREFIX)
            or not 0 < len(list_id) <= _MAX_ID
            or "/" in list_id
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = _TEMPLATE
        request = Request(scope, receive)
        try:
            status, headers, body = await answer(
                self.api.state.runtime,
                list_id,
                accept=request.headers.get("accept", ""),
                if_none_match=request.headers.get("if-none-match"),
            )
        except Exception as exc:
            handler = next(
                (
                    self.api.exception_handlers[k]
                    for k in type(exc).__mro__
                    if k in self.api.exception_handlers
                ),
                None,
            )
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode("ascii")))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
