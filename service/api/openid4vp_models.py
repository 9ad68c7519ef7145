"""Bodies of the OpenID4VP endpoints: what relying parties send and read, what wallets get."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas import ErrorItem, StatusName, Timestamp
from service.core.openid4vp import MAX_PATH_DEPTH, MAX_PATHS, MAX_PURPOSE_LENGTH
from service.services.openid4vp_verifier import MAX_WAIT_SECONDS

__all__ = [
    "AuthorizationResponseForm",
    "DcApiResponseBody",
    "PresentationRequestBody",
    "PresentationRequestCreated",
    "PresentationResult",
    "PresentationStatus",
    "WalletErrorBody",
]


class PresentationRequestBody(BaseModel):
    # strict: no coercion ("5" for 5), as the documented schema says.
    model_config = ConfigDict(extra="forbid", strict=True)

    vct: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The credential type to ask for; default: Thiqa's national ID type. It "
        "must be a type some trusted issuer issues.",
    )
    claims: list[list[str]] = Field(
        max_length=MAX_PATHS,
        description="The claims you need, as DCQL claims paths of member names: "
        '`["given_name"]`, `["place_of_birth", "locality"]`. Only these are ever '
        f"returned to you. At most {MAX_PATHS} paths of 1 to {MAX_PATH_DEPTH} names; array "
        "selectors are not supported. `[]` asks for no claim: proof of a valid credential.",
        examples=[[["given_name"], ["family_name#ar"], ["place_of_birth", "locality"]]],
    )
    purpose: str = Field(
        min_length=1,
        max_length=MAX_PURPOSE_LENGTH,
        description="Why you ask, shown to the citizen before they consent. Any script; one "
        "line; no control or bidirectional-override characters.",
        examples=["التحقق من هويتك لفتح حساب / Vérifier votre identité"],
    )
    expires_in: int | None = Field(
        default=None,
        ge=1,
        description="Seconds the wallet has to answer; default `THIQA_PRESENTATION_TTL_"
        "SECONDS`, at most `THIQA_PRESENTATION_MAX_TTL_SECONDS`.",
    )
    client_id_prefix: Literal["x509_hash", "x509_san_dns", "redirect_uri"] = Field(
        default="x509_hash",
        description="How Thiqa identifies itself to the wallet. `x509_hash` (HAIP 1.0) and "
        "`x509_san_dns`: a Request Object signed with the access certificate (`x5c`). "
        "`redirect_uri`: unsigned, passed by value only.",
    )
    request_mode: Literal["reference", "value"] = Field(
        default="reference",
        description="`reference`: the wallet fetches the request from `request_uri`; "
        "`value`: it is all in `wallet_uri`.",
    )
    request_uri_method: Literal["get", "post"] = Field(
        default="get",
        description="`post`: the wallet POSTs to `request_uri` with a `wallet_nonce`, "
        "echoed inside the signed Request Object.",
    )
    response_mode: Literal["direct_post.jwt", "direct_post", "dc_api.jwt", "dc_api"] = Field(
        default="direct_post.jwt",
        description="`direct_post.jwt`: the answer is encrypted (ECDH-ES P-256, A128GCM or "
        "A256GCM) to a key made for this request. `dc_api.jwt`/`dc_api`: the answer comes "
        "through the browser's Digital Credentials API (`dc_api_request`).",
    )
    redirect_uri: str | None = Field(
        default=None,
        max_length=512,
        description="Same-device flow: after answering, the wallet sends the citizen's "
        "browser here with `#response_code=...`; the verdict is then readable only with that "
        "code (`GET ...?response_code=`).",
    )
    expected_origins: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="DC API requests: the origins (`https://host[:port]`) of your pages.",
    )
    trusted_authorities: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="DCQL `trusted_authorities` of type `aki`: only credentials whose "
        "`x5c` chains to one of these anchors (base64url key identifiers) are accepted.",
    )


class PresentationRequestCreated(BaseModel):
    request_id: str
    nonce: str = Field(description="The nonce the wallet's key-binding JWT must carry.")
    client_id: str = Field(
        description="Thiqa's client id towards the wallet (`x509_hash:...`, "
        "`x509_san_dns:...` or `redirect_uri:` + response URI): the KB-JWT `aud` (through "
        "the DC API: `origin:<origin>`)."
    )
    request_uri: str | None = Field(
        description="Where the wallet fetches the request (public); null when by value."
    )
    expires_at: Timestamp
    wallet_uri: str | None = Field(
        description="`openid4vp://?client_id=...&request_uri=...`: link or QR code content; "
        "null for a DC API request."
    )
    qr_png: str | None = Field(description="The wallet URI as a QR code: PNG, base64.")
    qr_svg: str | None = Field(description="The same QR code as SVG.")
    dc_api_request: dict[str, Any] | None = Field(
        default=None,
        description="DC API requests: `{protocol, data}`, one entry of "
        "`navigator.credentials.get({digital: {requests: [...]}})`.",
    )


class PresentationResult(BaseModel):
    valid: bool = Field(description="True exactly when `errors` is empty.")
    credential_status: StatusName | None
    issuer: str | None
    vct: str | None
    claims: dict[str, Any] | None = Field(
        description="Only the requested claims; anything else the wallet disclosed is "
        "dropped and never stored. Null unless valid."
    )
    errors: list[ErrorItem]


class PresentationStatus(BaseModel):
    request_id: str
    state: Literal["pending", "completed", "failed", "expired"] = Field(
        description="`pending` until the wallet answers or the request expires; `completed` "
        "(valid) or `failed` once answered."
    )
    verdict: PresentationResult | None


class WalletErrorBody(BaseModel):
    """An OAuth-style error for the wallet; `code` is Thiqa's stable code for the case."""

    error: str = Field(examples=["invalid_request"])
    error_description: str
    code: str = Field(examples=["nonce_replayed"])
    errors: list[ErrorItem] | None = Field(
        default=None, description="With `presentation_rejected`: the verdict's errors."
    )


class AuthorizationResponseForm(BaseModel):
    """Sent as `application/x-www-form-urlencoded` (documentation only)."""

    vp_token: str | None = Field(
        default=None,
        description='JSON: `{"credential": ["<SD-JWT>~<disclosures>~<KB-JWT>"]}`.',
    )
    state: str = Field(description="The request's `state`.")
    error: str | None = Field(default=None, description="Instead of `vp_token`: why not.")
    error_description: str | None = None


WAIT_DESCRIPTION = (
    f"Long-poll: hold the answer up to this many seconds (at most {MAX_WAIT_SECONDS}) while "
    "the request is pending; it returns as soon as the state changes."
)


class DcApiResponseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin: str = Field(
        max_length=256, description="The origin of the page that called the DC API."
    )
    data: dict[str, Any] = Field(
        description="`data` of the DigitalCredential the browser returned: `{response}` "
        "(a JWE, `dc_api.jwt`) or `{vp_token}` (`dc_api`)."
    )
