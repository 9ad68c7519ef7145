"""Verifying a presented credential (verifying apps)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from service.api.auditing import AuditDep
from service.api.deps import RuntimeDep, require_scope
from service.api.metrics import MetricsDep
from service.api.problems import PROBLEM_RESPONSES
from service.api.schemas import VerifyRequest, VerifyResponse, verdict_body
from service.core.encoding import EncodingError, b64url_decode
from service.core.mdoc.handover import dc_api_session_transcript, redirect_session_transcript
from service.errors import InvalidMdocPresentation
from service.store.audit import AuditAction
from service.store.clients import Client, Scope

router = APIRouter(tags=["verification"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEM_RESPONSES,
    503: {
        "description": "Redis cannot answer: the body is a problem (`code` "
        "`status_unavailable`) that is also a verdict with `valid: false`.",
        "content": {"application/problem+json": {}},
    },
}


@router.post(
    "/v1/verify",
    response_model=VerifyResponse,
    responses=_RESPONSES,
    summary="Verify a presentation",
)
async def verify(
    body: VerifyRequest,
    runtime: RuntimeDep,
    client: Annotated[Client, Depends(require_scope(Scope.VERIFY))],
    audit: AuditDep,
    metrics: MetricsDep,
) -> VerifyResponse:
    """Verify an SD-JWT VC presentation: signature, disclosures, validity period, the
    holder's key binding and the credential's status, in that order.

    The answer is 200 whether or not the credential is valid: `valid` is true exactly when
    `errors` is empty, and each error has a stable `code`. Give `nonce` (and `audience`) to
    require proof that the holder presented it to you just now.
    """
    if body.format == "mso_mdoc":
        verdict = await runtime.verifier.verify_mdoc(
            mdoc_bytes(body.credential), transcript=session_transcript(body)
        )
    else:
        verdict = await runtime.verifier.verify(
            body.credential, nonce=body.nonce, audience=body.audience
        )
    metrics.observe_verdict(verdict)
    # The audit entry is written after the response has gone, so verification keeps its
    # single Redis round trip on the response path. The price: if Redis fails right then,
    # the entry is lost (an error is logged and counted); the verdict itself never depends
    # on it, and a status Redis cannot read still fails closed. Issuer and type only, and
    # only once the signature held; never a claim.
    audit.soon(
        AuditAction.CREDENTIAL_VERIFIED,
        client=client.name,
        result=["valid"] if verdict.valid else [f.reason.value for f in verdict.failures],
        issuer=verdict.issuer,
        vct=verdict.vct,
    )
    return verdict_body(verdict)


def mdoc_bytes(credential: str) -> bytes:
    try:
        return b64url_decode(credential)
    except EncodingError:
        raise InvalidMdocPresentation("credential is not base64url.") from None


def session_transcript(body: VerifyRequest) -> list[Any]:
    """The OpenID4VP SessionTranscript the wallet signed: the redirect form when
    `response_uri` is given, the Digital Credentials API form when `origin` is."""
    thumbprint = b64url_decode(body.jwk_thumbprint) if body.jwk_thumbprint else None
    if body.nonce is None:
        raise InvalidMdocPresentation("mso_mdoc needs the request's nonce.")
    if body.origin is not None and body.response_uri is None and body.audience is None:
        return dc_api_session_transcript(
            origin=body.origin, nonce=body.nonce, jwk_thumbprint=thumbprint
        )
    if body.response_uri is None or body.audience is None or body.origin is not None:
        raise InvalidMdocPresentation(
            "mso_mdoc needs audience (client_id), nonce and response_uri, or origin and nonce."
        )
    return redirect_session_transcript(
        client_id=body.audience,
        nonce=body.nonce,
        response_uri=body.response_uri,
        jwk_thumbprint=thumbprint,
    )
