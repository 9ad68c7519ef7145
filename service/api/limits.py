"""Request body limits as plain ASGI middleware: size, and strict JSON.

The body is read here, up to the limit, before the app sees the request: a declared
``Content-Length`` over the limit is refused without reading, and a chunked body is refused
as soon as it passes the limit. Bodies are small (64 KiB by default), so holding one in memory
costs nothing, and the app never starts work on a request that will be refused.

A JSON body must also be strict JSON (no duplicate member names, no NaN, nesting at most 16
deep): the framework's parser would read the last of two duplicated members and recurse until
the interpreter gives up, so the body is checked here, once, with Thiqa's own reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem_response
from service.core.encoding import EncodingError, json_loads
from service.errors import InvalidJson, RequestTooLarge

__all__ = ["PARSED_JSON", "BodySizeLimit"]

#: Where the strictly parsed JSON body is left in the ASGI scope, so that a route reading it
#: (:mod:`service.api.verify_lane`) does not parse it a second time.
PARSED_JSON = "thiqa.parsed_json"


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        own_json_paths: Iterable[str] = (),
        path_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Routes whose bodies are meant to be larger (a batch of presentations).
        self.path_limits = dict(path_limits or {})
        # Routes that read their JSON with the strict reader themselves, because their
        # protocol defines the error for a bad body (OpenID4VCI's credential endpoint answers
        # ``invalid_credential_request``, not a problem document).
        self.own_json_paths = frozenset(own_json_paths)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(RequestTooLarge(f"The limit is {limit} bytes."))
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        if _is_json(scope) and chunks != [b""] and scope["path"] not in self.own_json_paths:
            try:
                scope[PARSED_JSON] = json_loads(b"".join(chunks))
            except EncodingError as exc:
                await problem_response(InvalidJson(str(exc)))(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
