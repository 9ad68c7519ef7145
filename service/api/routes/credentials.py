"""Issuing credentials and changing their status (issuing and revoking apps)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from service.api.auditing import AuditDep
from service.api.deps import IssuingClient, IssuingOrRevokingClient, RevokingClient, RuntimeDep
from service.api.problems import PROBLEM_RESPONSES, Problem
from service.api.schemas import (
    CredentialInfo,
    IssueRequest,
    IssueResponse,
    StatusChange,
    StatusClaim,
    StatusListRef,
    status_name,
    timestamp,
)
from service.core.status_list import StatusValue
from service.store.audit import AuditAction

router = APIRouter(prefix="/v1/credentials", tags=["credentials"], responses=PROBLEM_RESPONSES)

CredentialId = Annotated[str, Path(max_length=64, description="As returned at issuance.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "`credential_not_found`"}
}


@router.post("", status_code=201, response_model=IssueResponse, summary="Issue a credential")
async def issue_credential(
    body: IssueRequest,
    runtime: RuntimeDep,
    client: IssuingClient,
    audit: AuditDep,
) -> IssueResponse:
    """Sign an SD-JWT VC for a citizen. Every claim is selectively disclosable; Thiqa keeps
    only the credential's id, type, status position, times and signing key id."""
    issued = await runtime.issuer.issue(
        body.claims,
        vct=body.vct,
        holder_jwk=body.holder_jwk,
        valid_for_days=body.valid_for_days,
        client=client.name,
    )
    # Written before answering, so a 201 the client saw is in the trail (unless Redis failed
    # right then: that is logged as an error and the 201 still stands; see auditing.py).
    await audit(
        AuditAction.CREDENTIAL_ISSUED,
        client=client.name,
        credential_id=issued.credential_id,
        vct=issued.vct or None,
        kid=issued.kid or None,
    )
    return IssueResponse(
        credential_id=issued.credential_id,
        credential=issued.credential,
        status=StatusClaim(status_list=StatusListRef(idx=issued.status.idx, uri=issued.status.uri)),
        issued_at=timestamp(issued.issued_at),
        expires_at=timestamp(issued.expires_at),
    )


@router.get(
    "/{credential_id}",
    response_model=CredentialInfo,
    responses=_NOT_FOUND,
    summary="A credential's status",
)
async def get_credential(
    credential_id: CredentialId,
    runtime: RuntimeDep,
    client: IssuingOrRevokingClient,
) -> CredentialInfo:
    """The credential's current status and lifetime (no personal claims: none are kept).
    Only for the client that issued it, or one with the `admin` scope (others: 404)."""
    record = await runtime.issuer.describe(credential_id, client=client)
    return CredentialInfo(
        credential_id=record.credential_id,
        status=status_name(record.status),
        vct=record.vct,
        issued_at=timestamp(record.issued_at),
        expires_at=timestamp(record.expires_at),
        status_changed_at=timestamp(record.changed_at),
    )


_ACTIONS = {
    StatusValue.INVALID: AuditAction.CREDENTIAL_REVOKED,
    StatusValue.SUSPENDED: AuditAction.CREDENTIAL_SUSPENDED,
    StatusValue.VALID: AuditAction.CREDENTIAL_REINSTATED,
}


def _status_route(target: StatusValue, summary: str, doc: str) -> None:
    responses = {**_NOT_FOUND}
    if target is not StatusValue.INVALID:
        responses[409] = {"model": Problem, "description": "`status_conflict`: it is revoked."}

    async def change(
        credential_id: CredentialId,
        runtime: RuntimeDep,
        client: RevokingClient,
        audit: AuditDep,
    ) -> StatusChange:
        status = await runtime.issuer.set_status(credential_id, target, client=client)
        # A separate XADD after the change, not inside its Lua script: the script's keys are
        # in the list's {sl:...} slot and the stream in {audit}, a cross-slot script on Redis
        # Cluster. Refused changes (404, 409) raise above and are not recorded.
        await audit(_ACTIONS[target], client=client.name, credential_id=credential_id)
        return StatusChange(credential_id=credential_id, status=status_name(status))

    change.__doc__ = (
        doc + " Only the client that issued the credential (directly or through an offer), or"
        " one with the `admin` scope, may change it; any other gets 404 `credential_not_found`."
    )
    router.add_api_route(
        f"/{{credential_id}}/{summary}",
        change,
        methods=["POST"],
        response_model=StatusChange,
        responses=responses,
        name=f"{summary}_credential",
        summary=f"{summary.title()} a credential",
    )


_status_route(
    StatusValue.INVALID, "revoke", "Revoke for good. The very next verification answers `revoked`."
)
_status_route(
    StatusValue.SUSPENDED,
    "suspend",
    "Suspend until reinstated. Verifications answer `suspended` meanwhile.",
)
_status_route(
    StatusValue.VALID,
    "reinstate",
    "Lift a suspension. A revoked credential cannot be reinstated (409).",
)
