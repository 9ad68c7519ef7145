"""Bodies of the OpenID4VCI endpoints, for validation and for the API documentation.

The wallet-facing ones (offer, metadata, token, nonce, credential) follow OpenID4VCI 1.0 and
RFC 6749/8414 member for member, hyphenated names included (as aliases); the issuing app's
offer endpoint follows Thiqa's own conventions.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas import IssueRequest, Timestamp
from service.core.openid4vci import PRE_AUTHORIZED_GRANT

__all__ = [
    "AuthorizationServerMetadata",
    "CredentialIssuerMetadata",
    "CredentialOffer",
    "CredentialRequestBody",
    "CredentialResponse",
    "NonceResponse",
    "OAuthErrorBody",
    "OfferInfo",
    "OfferRequest",
    "OfferResponse",
    "TokenRequestForm",
    "TokenResponse",
]


class _Spec(BaseModel):
    # Wallets must ignore members they do not know; so do these models, and they keep them.
    # In these documents an absent member and a null one differ (a ``tx_code`` member, even
    # null or empty, tells the wallet to ask for a transaction code): routes answering them
    # leave out None members (``response_model_exclude_none``) or send the document as built.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class OfferRequest(BaseModel):
    """The claims of the credential to offer, checked exactly as for `POST /v1/credentials`.
    There is no `holder_jwk`: the wallet proves its own key when it comes for the credential.
    """

    # strict: no coercion ("yes" or 1 for true), as the documented schema says.
    model_config = ConfigDict(extra="forbid", strict=True)

    claims: dict[str, Any] = Field(
        description="The citizen's claims. Kept in Redis only until the wallet has the "
        "credential or the offer expires.",
        examples=(IssueRequest.model_fields["claims"].examples or [])[:1],
    )
    vct: str | None = Field(
        default=None, max_length=256, description="Credential type; default: the national ID type."
    )
    valid_for_days: int | None = Field(default=None, ge=1, le=3650)
    tx_code: bool = Field(
        default=True,
        description="Require a transaction code (PIN), returned once in `tx_code` for the "
        "issuing app to give the citizen apart from the QR code (SMS, counter, letter).",
    )


class TxCode(_Spec):
    input_mode: Literal["numeric", "text"] = "numeric"
    length: int | None = None
    description: str | None = None


class PreAuthorizedCodeGrant(_Spec):
    pre_authorized_code: str = Field(
        alias="pre-authorized_code", description="Short-lived and single-use."
    )
    tx_code: TxCode | None = Field(
        default=None, description="Present when the token request needs a transaction code."
    )


class Grants(_Spec):
    pre_authorized_code: PreAuthorizedCodeGrant = Field(alias=PRE_AUTHORIZED_GRANT)


class CredentialOffer(_Spec):
    """A Credential Offer object (OpenID4VCI §4.1.1)."""

    credential_issuer: str
    credential_configuration_ids: list[str]
    grants: Grants


class OfferResponse(BaseModel):
    offer_id: str = Field(description="To follow the offer at `GET /v1/credential-offers/{id}`.")
    credential_offer: CredentialOffer
    credential_offer_uri: str = Field(
        description="Where a wallet fetches the offer (by reference)."
    )
    offer_uri: str = Field(
        description="`openid-credential-offer://?credential_offer_uri=...`: the link and the QR "
        "code's content.",
        examples=[
            "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fid.example.ma"
            "%2Fcredential-offers%2F3q2-7wY5QeOtfz2xNQ6f3A"
        ],
    )
    tx_code: str | None = Field(
        description="The transaction code, shown only here: give it to the citizen apart from "
        "the QR code. Null when none is required.",
    )
    expires_at: Timestamp = Field(description="When the offer can no longer be redeemed.")
    qr_png: str = Field(description="The QR code of `offer_uri`, PNG, base64.")
    qr_svg: str = Field(description="The same QR code as an SVG document.")


class OfferInfo(BaseModel):
    offer_id: str
    status: Literal["offered", "token_issued", "issuing", "issued", "failed"] = Field(
        description="`issued` once the wallet holds the credential; `failed` if signing failed "
        "after the claims were taken (make a new offer)."
    )
    expires_at: Timestamp
    credential_id: str | None = Field(
        description="The issued credential's id, to suspend or revoke it; null until issued."
    )


class Display(_Spec):
    name: str
    locale: str | None = None
    description: str | None = None


class ClaimDisplay(_Spec):
    name: str
    locale: str


class ClaimDescription(_Spec):
    path: list[str | int | None]
    mandatory: bool | None = None
    display: list[ClaimDisplay] | None = None


class CredentialMetadata(_Spec):
    display: list[Display]
    claims: list[ClaimDescription]


class ProofType(_Spec):
    proof_signing_alg_values_supported: list[str]


class CredentialConfiguration(_Spec):
    format: Literal["dc+sd-jwt"]
    vct: str
    scope: str | None = None
    cryptographic_binding_methods_supported: list[str]
    credential_signing_alg_values_supported: list[str]
    proof_types_supported: dict[str, ProofType]
    credential_metadata: CredentialMetadata


class CredentialIssuerMetadata(_Spec):
    """Credential Issuer metadata (OpenID4VCI §12.2.4)."""

    credential_issuer: str
    credential_endpoint: str
    nonce_endpoint: str
    display: list[Display]
    credential_configurations_supported: dict[str, CredentialConfiguration]


class AuthorizationServerMetadata(_Spec):
    """OAuth 2.0 authorization server metadata (RFC 8414), the issuer being its own AS."""

    issuer: str
    token_endpoint: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    pre_authorized_grant_anonymous_access_supported: bool = Field(
        alias="pre-authorized_grant_anonymous_access_supported"
    )


class TokenRequestForm(BaseModel):
    """Sent as `application/x-www-form-urlencoded` (documentation only)."""

    grant_type: Literal["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    pre_authorized_code: str = Field(alias="pre-authorized_code")
    tx_code: str | None = Field(
        default=None, description="Required when the offer has a `tx_code` object."
    )


class TokenResponse(BaseModel):
    access_token: str = Field(description="Single-use: good for one credential request.")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int


class OAuthErrorBody(BaseModel):
    """An OAuth 2.0 error (RFC 6749 §5.2, RFC 6750 §3.1, OpenID4VCI §8.3.1.2): these
    endpoints answer the protocol's error shape, not problem details."""

    error: str = Field(examples=["invalid_grant"])
    error_description: str | None = None


class NonceResponse(BaseModel):
    c_nonce: str = Field(description="Single-use; put it in the key proof's `nonce`.")


class CredentialRequestBody(BaseModel):
    """A Credential Request (documentation only; the body is read strictly by the server)."""

    credential_configuration_id: Literal["thiqa_national_id"]
    proofs: dict[str, list[str]] = Field(
        description='`{"jwt": ["<openid4vci-proof+jwt>"]}`: exactly one proof, whose header '
        "carries the wallet's public key as `jwk`.",
    )


class IssuedCredentialItem(BaseModel):
    credential: str = Field(description="The SD-JWT VC in issuance form: JWT~disclosures~")


class CredentialResponse(BaseModel):
    credentials: list[IssuedCredentialItem]


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """An inline JSON schema for an ``openapi_extra`` request body."""
    return model.model_json_schema(by_alias=True)
