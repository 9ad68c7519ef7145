"""Publishing status lists (draft-ietf-oauth-status-list §8): public, signed, cacheable.

The token is built from the very Redis string the online verifier reads, at request time,
so a published list and an online answer can never disagree; ``Cache-Control`` allows caching
for exactly the token's ``ttl``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import RuntimeDep
from service.api.negotiation import prefers, prefers_json
from service.api.problems import Problem
from service.core.mdoc.status_cwt import STATUS_LIST_CWT_MEDIA_TYPE, sign_status_list_cwt
from service.core.status_token import sign_status_list, status_list_claims
from service.errors import NotAcceptable, StatusListNotFound

router = APIRouter(tags=["public"])

STATUS_LIST_MEDIA_TYPE = "application/statuslist+jwt"


@router.get(
    "/status-lists/{list_id}",
    summary="A published status list (Token Status List)",
    response_class=Response,
    responses={
        200: {
            "description": "A Status List Token (`statuslist+jwt`, 2 bits per entry: 0 valid, "
            "1 revoked, 2 suspended); the same list as a CWT (`application/statuslist+cwt`, "
            "COSE_Sign1 by the mdoc document signer, `x5chain`) when `Accept` prefers it; or "
            "its claims as JSON for `Accept: application/json`.",
            "content": {
                STATUS_LIST_MEDIA_TYPE: {"schema": {"type": "string"}},
                STATUS_LIST_CWT_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        404: {"model": Problem, "description": "`status_list_not_found`"},
    },
)
async def get_status_list(
    list_id: Annotated[
        str, Path(max_length=32, description="From a credential's `status.status_list.uri`.")
    ],
    request: Request,
    runtime: RuntimeDep,
) -> Any:
    """The status list a credential's `status.status_list.uri` names, signed by the issuer's
    current key (public, no API key): how a verifier elsewhere learns whether a Thiqa
    credential was revoked or suspended. Built from the very bytes `POST /v1/verify` reads,
    so it never disagrees with an online answer; cacheable for its `ttl`
    (`THIQA_STATUS_LIST_TTL_SECONDS`)."""
    data = await runtime.status.list_bytes(list_id)
    if data is None:
        raise StatusListNotFound()
    settings = runtime.settings
    claims = status_list_claims(
        data,
        uri=settings.status_list_uri(list_id),
        issuer=settings.issuer_url,
        now=int(time.time()),
        ttl=settings.status_list_ttl_seconds,
        lifetime=settings.status_list_lifetime_seconds,
    )
    headers = {
        "Cache-Control": f"public, max-age={settings.status_list_ttl_seconds}",
        "Vary": "Accept",
    }
    accept = request.headers.get("accept", "")
    # The signed token is the default; the decoded form only when asked for by name.
    if prefers_json(accept, STATUS_LIST_MEDIA_TYPE):
        return JSONResponse(claims, headers=headers)
    # The same list, as mdoc verifiers read it: a CWT signed by the document signer, whose
    # certificate travels in x5chain (draft-ietf-oauth-status-list §5.2).
    if prefers(accept, STATUS_LIST_CWT_MEDIA_TYPE, STATUS_LIST_MEDIA_TYPE):
        signer = runtime.mdoc_signer
        if signer is None:
            raise NotAcceptable("This service signs no CWT status lists.")
        cwt = sign_status_list_cwt(
            data,
            uri=claims["sub"],
            bits=claims["status_list"]["bits"],
            now=claims["iat"],
            ttl=settings.status_list_ttl_seconds,
            lifetime=settings.status_list_lifetime_seconds,
            key=signer.key,
            x5chain=signer.x5chain,
        )
        return Response(cwt, media_type=STATUS_LIST_CWT_MEDIA_TYPE, headers=headers)
    token = sign_status_list(claims, runtime.keyring.active)
    return Response(token, media_type=STATUS_LIST_MEDIA_TYPE, headers=headers)
