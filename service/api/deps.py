"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.core.reasons import Failure, Reason
from service.core.verify import Verdict
from service.errors import InsufficientScope, StatusUnavailable, StoreUnavailable, Unauthenticated
from service.logs import bind_client
from service.services.runtime import Runtime
from service.store.clients import Client, Scope, looks_like_api_key

__all__ = [
    "IssuingClient",
    "IssuingOrRevokingClient",
    "RevokingClient",
    "RuntimeDep",
    "VerifyingClient",
    "api_key_of",
    "require_scope",
]


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain def dependency on a worker thread, a hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# Read for the OpenAPI document's security scheme only; the header is read below, so that a
# missing header and a malformed one can be told apart.
_bearer = HTTPBearer(auto_error=False, description="An API key from `thiqa clients add`.")

#: What a refused API key is told: which of three things to fix, never whether a key id exists.
NO_HEADER = "No Authorization header: send Authorization: Bearer <API key>."
MALFORMED = "The Authorization header is not Bearer <API key> with a Thiqa API key (thq_...)."
NOT_ACCEPTED = "The API key is not accepted: it is unknown, deleted or mistyped."


def api_key_of(request: Request) -> str:
    """The API key of the request's ``Authorization`` header; raises Unauthenticated saying
    whether the header is missing or malformed."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise Unauthenticated(NO_HEADER)
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not looks_like_api_key(value):
        raise Unauthenticated(MALFORMED)
    return value


def require_scope(*accepted: Scope) -> Callable[..., Awaitable[Client]]:
    """A dependency admitting clients whose key carries any of ``accepted``."""

    async def dependency(
        request: Request,
        runtime: RuntimeDep,
        _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Client:
        api_key = api_key_of(request)
        try:
            client = await runtime.clients.authenticate(
                api_key, per_minute=runtime.settings.rate_limit_per_minute
            )
        except StoreUnavailable as exc:
            if Scope.VERIFY in accepted:
                # A verifying app always gets a verdict: not valid, status unavailable.
                verdict = Verdict(failures=(Failure.of(Reason.STATUS_UNAVAILABLE),))
                raise StatusUnavailable(exc.detail, verdict=verdict) from exc
            raise
        if client is None:
            raise Unauthenticated(NOT_ACCEPTED)
        bind_client(client.name)  # this request's log lines name who made it
        if not client.scopes & set(accepted):
            raise InsufficientScope(f"This call needs the scope {' or '.join(accepted)}.")
        return client

    return dependency


# Each scope a route can demand, named once: a router says which client it serves, and a
# typo'd or forgotten scope cannot hide in one route's signature.
IssuingClient = Annotated[Client, Depends(require_scope(Scope.ISSUE))]
RevokingClient = Annotated[Client, Depends(require_scope(Scope.REVOKE))]
#: Reading a credential's status: the app that issued it or one that may change it.
IssuingOrRevokingClient = Annotated[Client, Depends(require_scope(Scope.ISSUE, Scope.REVOKE))]
VerifyingClient = Annotated[Client, Depends(require_scope(Scope.VERIFY))]
