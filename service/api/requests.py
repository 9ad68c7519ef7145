"""Each request's id, log line and metrics, as plain ASGI middleware.

The request id is the caller's ``X-Request-ID`` when it is a short token
(``^[A-Za-z0-9._-]{1,64}$``), otherwise a fresh random one: an id that could hold anything
would let a caller write arbitrary text into the logs and the audit trail. The id is echoed
in the ``X-Request-ID`` response header, bound to every log line written while the request
runs, and recorded in audit entries.

One ``thiqa.access`` line per request is written as the last bytes of the response are
sent (not after background work such as the verification's audit write). It holds the
method, path, route template, status, duration and client name. The path is the raw path
(without its query string) only for routes whose parameters are public ids (a credential, a
status list); any other route is logged by its template, and a path no route matched has
every opaque segment masked: an offer or presentation-request id in a URL is as good as the
offer or the request itself, so it must never reach a log, whatever route or typo carried it.

An exception nothing else handled is answered here as a 500 problem: so it too carries the
request id and, further out, the security headers, and its message (which may quote input)
is never printed by the server's default traceback logging.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.metrics import Metrics
from service.api.problems import problem_response
from service.errors import ThiqaError
from service.logs import RequestContext, current_request

__all__ = ["REQUEST_ID_HEADER", "RequestObserver", "valid_request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
_ID_HEADER = REQUEST_ID_HEADER.lower().encode("ascii")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAX_LOGGED_PATH = 256

access_log = logging.getLogger("thiqa.access")
log = logging.getLogger("thiqa.api")


def valid_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def _incoming_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if valid_request_id(text):
                return text
            break
    return secrets.token_hex(16)


#: Path parameters that grant nothing: routes made only of these log their raw path. Any other
#: parameter (an offer id, a presentation request id, one added later) is masked by default.
_PUBLIC_PARAMETERS = frozenset({"credential_id", "list_id"})
#: A path segment that could be an id: long enough to be a random token.
_OPAQUE_SEGMENT = re.compile(r"[^/]{16,}")


def _logged_path(scope: Scope, route: str) -> str:
    """The path for the access log: never a secret id, whatever the route."""
    path = str(scope["path"])[:_MAX_LOGGED_PATH]
    if route == "unmatched":
        # A redirect (trailing slash), a 404 or a typo of a secret route: mask what might be
        # an id rather than guess which unmatched paths are harmless.
        return _OPAQUE_SEGMENT.sub("{masked}", path)
    if set(scope.get("path_params") or ()) <= _PUBLIC_PARAMETERS:
        return path
    return route


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestObserver:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context = RequestContext(request_id=_incoming_id(scope))
        token = current_request.set(context)
        status = 0
        done = False

        def finish(final_status: int) -> None:
            nonlocal done
            if done:
                return
            done = True
            seconds = time.perf_counter() - started
            route = _route_of(scope)
            self.metrics.observe_request(scope["method"], route, final_status, seconds)
            if not access_log.isEnabledFor(logging.INFO):  # THIQA_LOG_LEVEL above info
                return
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": _logged_path(scope, route),
                    "route": route,
                    "status": final_status,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Raw, as in SecurityHeaders: replaces any the route set.
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() != _ID_HEADER),
                    (_ID_HEADER, context.request_id.encode("latin-1")),
                ]
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Logged as the last bytes are handed over, so the line is there by the time
                # the caller has its answer.
                finish(status)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            log.error(
                "unhandled exception on %s %s", scope["method"], _route_of(scope), exc_info=True
            )
            if status:  # the response has begun: nothing can be answered any more
                finish(status)
                raise
            await problem_response(ThiqaError())(scope, receive, observed_send)
        finally:
            if not done:  # the client went away before the response was complete
                finish(status or 499)
            current_request.reset(token)
