"""Request and response bodies of the HTTP API: the contract government apps code against."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.core.status_list import StatusValue
from service.core.verify import Verdict

__all__ = [
    "CredentialInfo",
    "ErrorItem",
    "Health",
    "IssueRequest",
    "IssueResponse",
    "IssuerMetadata",
    "Readiness",
    "StatusChange",
    "StatusName",
    "Timestamp",
    "VerifyBatchRequest",
    "VerifyBatchResponse",
    "VerifyRequest",
    "VerifyResponse",
    "status_name",
    "timestamp",
    "verdict_body",
    "verdict_dict",
]

StatusName = Literal["valid", "suspended", "revoked"]
_NAMES: dict[StatusValue, StatusName] = {
    StatusValue.VALID: "valid",
    StatusValue.SUSPENDED: "suspended",
    StatusValue.INVALID: "revoked",
}


def status_name(value: StatusValue) -> StatusName:
    return _NAMES[value]


def timestamp(seconds: int) -> str:
    """RFC 3339 UTC, second precision."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


#: What :func:`timestamp` writes, documented as such (RFC 3339 is OpenAPI's ``date-time``).
Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-29T10:00:00Z"])
]


class _Strict(BaseModel):
    # No unknown member, and no coercion ("5" for 5, 1 for true): a request the documented
    # schema refuses is refused.
    model_config = ConfigDict(extra="forbid", strict=True)


class IssueRequest(_Strict):
    claims: dict[str, Any] = Field(
        description="The citizen's claims. Every one is selectively disclosable in the "
        "credential; none is kept by Thiqa after issuance.",
        examples=[
            {
                "given_name": "Amina",
                "given_name#ar": "أمينة",
                "family_name": "El Idrissi",
                "family_name#ar": "الإدريسي",
                "birthdate": "1990-04-12",
                "national_id": "ZZ104233",
                "nationality": "MA",
            }
        ],
    )
    vct: str | None = Field(
        default=None, max_length=256, description="Credential type; default: the national ID type."
    )
    holder_jwk: dict[str, Any] | None = Field(
        default=None,
        description="The holder's public key (EC P-256/P-384 or Ed25519 JWK) to bind the "
        "credential to; presentations then need a KB-JWT signed by it.",
    )
    valid_for_days: int | None = Field(default=None, ge=1, le=3650)


class StatusListRef(BaseModel):
    idx: int
    uri: str


class StatusClaim(BaseModel):
    status_list: StatusListRef


class IssueResponse(BaseModel):
    credential_id: str
    credential: str = Field(description="The SD-JWT VC in issuance form: JWT~disclosures~")
    format: Literal["dc+sd-jwt"] = "dc+sd-jwt"
    status: StatusClaim
    issued_at: Timestamp
    expires_at: Timestamp


class StatusChange(BaseModel):
    credential_id: str
    status: StatusName


class CredentialInfo(BaseModel):
    credential_id: str
    status: StatusName
    vct: str
    issued_at: Timestamp
    expires_at: Timestamp
    status_changed_at: Timestamp


class VerifyRequest(_Strict):
    credential: str = Field(
        min_length=1,
        max_length=60 * 1024,
        description="The presentation: issuer JWT~disclosures~[KB-JWT].",
    )
    nonce: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The nonce you gave the holder; when set, a matching KB-JWT is required.",
    )
    audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Your identifier as the holder was told it; when set, a matching KB-JWT "
        "is required.",
    )


class ErrorItem(BaseModel):
    code: str
    message: str


class VerifyResponse(BaseModel):
    valid: bool = Field(description="True exactly when `errors` is empty.")
    credential_status: StatusName | None
    issuer: str | None
    vct: str | None
    claims: dict[str, Any] | None = Field(description="Only the claims the holder disclosed.")
    expires_at: Timestamp | None = None
    key_bound: bool = Field(
        default=False, description="A KB-JWT from the holder's key was checked and holds."
    )
    errors: list[ErrorItem]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]


class JWKS(BaseModel):
    keys: list[dict[str, Any]] = Field(
        description="Public JWKs (RFC 7517), each with `kid`, `alg` and `use: sig`: the pending, "
        "active and retired keys; a revoked key is never listed."
    )


class IssuerMetadata(BaseModel):
    """JWT VC Issuer Metadata (SD-JWT VC §5)."""

    issuer: str = Field(description="Exactly the `iss` of this issuer's credentials.")
    jwks: JWKS


MAX_BATCH: Final = 100


class VerifyBatchRequest(_Strict):
    presentations: list[VerifyRequest] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} presentations, each as the body of `POST /v1/verify`.",
    )


class VerifyBatchResponse(BaseModel):
    verdicts: list[VerifyResponse] = Field(
        description="One verdict per presentation, in the order they were sent."
    )


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    """:func:`verdict_body` as plain data, for a fast JSON encoder: the same members."""
    status = verdict.credential_status
    return {
        "valid": verdict.valid,
        "credential_status": _NAMES.get(status) if status is not None else None,
        "issuer": verdict.issuer,
        "vct": verdict.vct,
        "claims": verdict.claims,
        "expires_at": timestamp(verdict.expires_at) if verdict.expires_at is not None else None,
        "key_bound": verdict.key_bound,
        "errors": [{"code": f.reason.value, "message": f.message} for f in verdict.failures],
    }


def verdict_body(verdict: Verdict) -> VerifyResponse:
    status = verdict.credential_status
    return VerifyResponse(
        valid=verdict.valid,
        credential_status=_NAMES.get(status) if status is not None else None,
        issuer=verdict.issuer,
        vct=verdict.vct,
        claims=verdict.claims,
        expires_at=timestamp(verdict.expires_at) if verdict.expires_at is not None else None,
        key_bound=verdict.key_bound,
        errors=[ErrorItem(code=f.reason.value, message=f.message) for f in verdict.failures],
    )
