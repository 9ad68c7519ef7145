"""Verifying a presented credential (verifying apps)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.auditing import AuditDep
from service.api.deps import RuntimeDep, VerifyingClient
from service.api.metrics import MetricsDep
from service.api.problems import PROBLEM_RESPONSES
from service.api.schemas import VerifyRequest, VerifyResponse, verdict_body
from service.store.audit import AuditAction

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
    client: VerifyingClient,
    audit: AuditDep,
    metrics: MetricsDep,
) -> VerifyResponse:
    """Verify an SD-JWT VC presentation: signature, disclosures, validity period, the
    holder's key binding and the credential's status, in that order.

    The answer is 200 whether or not the credential is valid: `valid` is true exactly when
    `errors` is empty, and each error has a stable `code`. Give `nonce` (and `audience`) to
    require proof that the holder presented it to you just now.
    """
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
