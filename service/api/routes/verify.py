"""Verifying presented credentials (verifying apps): one at a time, or up to 100 at once.

Authentication shares the status lookup's Redis round trip (:mod:`service.api.verify_access`)
and the verdicts are encoded with orjson straight from the core's :class:`Verdict`. In the
running app, :mod:`service.api.verify_lane` answers these two paths before FastAPI's router;
the routes here declare them for the OpenAPI document and answer them the same way, through
the same :func:`answer_one` and :func:`answer_batch`, when the lane is not installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from service.api.auditing import AuditBatches
from service.api.metrics import Metrics
from service.api.problems import PROBLEM_RESPONSES
from service.api.schemas import (
    MAX_BATCH,
    VerifyBatchRequest,
    VerifyBatchResponse,
    VerifyRequest,
    VerifyResponse,
    verdict_dict,
)
from service.api.verify_access import VerifyAccess, bearer_key
from service.core.verify import Verdict
from service.logs import current_request
from service.services.runtime import Runtime
from service.services.verifying import Presented
from service.store.audit import AuditAction
from service.store.clients import Client

router = APIRouter(tags=["verification"])

#: The batch route's own body limit: 100 national-ID presentations, each about 3.7 KB with the
#: issuer's x5c chain in its header (about 375 KB of JSON), with room to spare.
BATCH_BODY_BYTES = 512 * 1024

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEM_RESPONSES,
    503: {
        "description": "Redis cannot answer: the body is a problem (`code` "
        "`status_unavailable`) that is also a verdict with `valid: false`.",
        "content": {"application/problem+json": {}},
    },
}
_BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEM_RESPONSES,
    503: {
        "description": "`store_unavailable`: Redis cannot answer; no verdict is given.",
        "content": {"application/problem+json": {}},
    },
}


#: The API key, as every API-key route declares it (the key is read by ``bearer_key``).
_BEARER: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


VERIFY_PATH = "/v1/verify"
BATCH_PATH = "/v1/verify/batch"


async def answer_one(app: Any, api_key: str, body: VerifyRequest) -> dict[str, Any]:
    """The verdict of ``POST /v1/verify`` as plain data (this route and the verify lane)."""
    presented = Presented(body.credential, body.nonce, body.audience)
    (verdict,) = await _verdicts(app, api_key, [presented])
    return verdict_dict(verdict)


async def answer_batch(app: Any, api_key: str, body: VerifyBatchRequest) -> dict[str, Any]:
    """The verdicts of ``POST /v1/verify/batch`` as plain data."""
    presented = [Presented(p.credential, p.nonce, p.audience) for p in body.presentations]
    verdicts = await _verdicts(app, api_key, presented)
    return {"verdicts": [verdict_dict(v) for v in verdicts]}


async def _verdicts(app: Any, api_key: str, presented: Sequence[Presented]) -> list[Verdict]:
    runtime: Runtime = app.state.runtime
    access: VerifyAccess = app.state.verify_access
    client, verdicts = await access.verdicts(runtime, api_key, presented)
    _observe(app.state.metrics, app.state.audit_batches, runtime, client, verdicts)
    return verdicts


def _observe(
    metrics: Metrics,
    batches: AuditBatches,
    runtime: Runtime,
    client: Client,
    verdicts: Sequence[Verdict],
) -> None:
    """Count every verdict; audit those whose issuer signature held, after the answer.

    The audit entries are written in batches after the response has gone, so verification
    keeps its single Redis round trip on the response path; a clean shutdown writes what is
    pending. If Redis fails right then, an entry is lost (an error is logged and counted);
    the verdict never depends on it. Issuer, type and codes only; never a claim. A verdict
    whose signature never held names nobody: counted, not audited (junk must not fill the
    trail).
    """
    context = current_request.get()
    request_id = context.request_id if context is not None else None
    for verdict in verdicts:
        metrics.observe_verdict(verdict)
        if verdict.issuer is None:
            metrics.unaudited.inc()
            continue
        batches.add(
            runtime.audit,
            AuditAction.CREDENTIAL_VERIFIED,
            via="api",
            client=client.name,
            request_id=request_id,
            result=["valid"] if verdict.valid else [f.reason.value for f in verdict.failures],
            issuer=verdict.issuer,
            vct=verdict.vct,
        )


@router.post(
    VERIFY_PATH,
    response_model=VerifyResponse,
    responses=_RESPONSES,
    summary="Verify a presentation",
    openapi_extra=_BEARER,
)
async def verify(
    body: VerifyRequest, request: Request, api_key: str = Depends(bearer_key)
) -> Response:
    """Verify an SD-JWT VC presentation: signature, disclosures, validity period, the
    holder's key binding and the credential's status, in that order.

    The answer is 200 whether or not the credential is valid: `valid` is true exactly when
    `errors` is empty, and each error has a stable `code`. Give `nonce` (and `audience`) to
    require proof that the holder presented it to you just now.
    """
    return _json(await answer_one(request.app, api_key, body))


@router.post(
    BATCH_PATH,
    response_model=VerifyBatchResponse,
    responses=_BATCH_RESPONSES,
    openapi_extra=_BEARER,
    summary=f"Verify up to {MAX_BATCH} presentations",
)
async def verify_batch(
    body: VerifyBatchRequest, request: Request, api_key: str = Depends(bearer_key)
) -> Response:
    """Verify up to 100 presentations in one call (back-office apps): one verdict each, in
    the order sent, with exactly the checks and codes of `POST /v1/verify`, and one audit
    entry each. Every status lookup goes to Redis in the same round trip. The body may be
    up to 512 KiB. If Redis cannot answer, the whole call is 503 `store_unavailable`."""
    return _json(await answer_batch(request.app, api_key, body))
