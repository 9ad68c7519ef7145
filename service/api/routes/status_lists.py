"""Publishing status lists (draft-ietf-oauth-status-list §8): public, signed, cacheable.

The router only chooses the form and the caching headers; the token is built, cached and
re-signed by :mod:`service.services.status_publishing`.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from service.api.deps import RuntimeDep
from service.api.negotiation import prefers_json
from service.api.problems import Problem
from service.errors import StatusListNotFound
from service.services.runtime import Runtime
from service.services.status_publishing import JSON_CLAIMS, STATUS_LIST_JWT

router = APIRouter(tags=["public"])

STATUS_LIST_MEDIA_TYPE = STATUS_LIST_JWT.media_type


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    return any(tag.strip() in (etag, "*", f"W/{etag}") for tag in if_none_match.split(","))


@router.get(
    "/status-lists/{list_id}",
    summary="A published status list (Token Status List)",
    response_class=Response,
    responses={
        200: {
            "description": "A Status List Token (`statuslist+jwt`, 2 bits per entry: 0 valid, "
            "1 revoked, 2 suspended), or its claims as JSON for `Accept: application/json`. "
            "`ETag` is set; `If-None-Match` with it answers 304.",
            "content": {
                STATUS_LIST_MEDIA_TYPE: {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        304: {"description": "The token named by `If-None-Match` is still the list."},
        404: {"model": Problem, "description": "`status_list_not_found`"},
    },
)
async def get_status_list(
    list_id: Annotated[
        str, Path(max_length=32, description="From a credential's `status.status_list.uri`.")
    ],
    request: Request,
    runtime: RuntimeDep,
) -> Response:
    """The status list a credential's `status.status_list.uri` names, signed by the issuer's
    current key (public, no API key): how a verifier elsewhere learns whether a Thiqa
    credential was revoked or suspended. A change is in the token served by the very next
    fetch; a token is re-signed before half its `ttl` (`THIQA_STATUS_LIST_TTL_SECONDS`) has
    passed, and is cacheable for its `ttl`, never past its `exp`."""
    status, headers, body = await answer(
        runtime,
        list_id,
        accept=request.headers.get("accept", ""),
        if_none_match=request.headers.get("if-none-match"),
    )
    return Response(body, status_code=status, headers=headers)


async def answer(
    runtime: Runtime, list_id: str, *, accept: str, if_none_match: str | None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a fetch (this route and :mod:`service.api.status_list_lane`).
    Raises StatusListNotFound."""
    published = await runtime.publisher.published(list_id)
    if published is None:
        raise StatusListNotFound()
    # The signed token is the default; the decoded form only when asked for by name.
    wanted = JSON_CLAIMS if prefers_json(accept, STATUS_LIST_MEDIA_TYPE) else STATUS_LIST_JWT
    body, etag = published.forms[wanted.media_type]
    headers = {
        "Cache-Control": f"public, max-age={published.max_age(time.time())}",
        "ETag": etag,
        "Vary": "Accept",
    }
    if _matches(if_none_match, etag):
        return 304, headers, b""
    headers["Content-Type"] = wanted.media_type
    return 200, headers, body
