"""OpenID4VCI 1.0 endpoints: the issuing app makes an offer; the wallet redeems it.

The wallet-facing endpoints (token, nonce, credential) answer errors the way OAuth 2.0 and
OpenID4VCI define them, ``{"error", "error_description"}``, because wallets are written
against those specs; everything else keeps Thiqa's problem details (a Redis outage is a 503
problem everywhere). Their bodies are read by hand: the token request is a form
(``service/api/forms.py``: a repeated parameter is refused as RFC 6749 §3.2 requires) and the
credential request is read with the strict JSON reader, like every token.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse

from service.api.auditing import AuditDep
from service.api.deps import IssuingClient, RuntimeDep
from service.api.forms import FORM, NO_STORE, media_type, read_form
from service.api.openid4vci_models import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    CredentialOffer,
    CredentialRequestBody,
    CredentialResponse,
    IssuedCredentialItem,
    NonceResponse,
    OAuthErrorBody,
    OfferInfo,
    OfferRequest,
    OfferResponse,
    TokenRequestForm,
    TokenResponse,
    schema_of,
)
from service.api.problems import PROBLEM_RESPONSES, Problem
from service.api.schemas import timestamp
from service.core import openid4vci as vci
from service.core.encoding import EncodingError, json_loads
from service.errors import InvalidTokenRequest, OfferNotFound
from service.services.type_metadata import national_id_metadata
from service.settings import Settings
from service.store.audit import AuditAction
from service.store.offers import OfferStore

__all__ = ["OWN_JSON_PATHS", "install_openid4vci"]

#: Read here with the strict JSON reader; a bad body is the protocol's error, not a problem.
OWN_JSON_PATHS = frozenset({"/credential"})

OfferId = Annotated[str, Path(max_length=64, description="As returned when the offer was made.")]
#: The wallet's offer endpoint checks the id itself: an id that cannot be one is an unknown
#: offer (404 ``offer_not_found``), never the framework's 422.
WalletOfferId = Annotated[str, Path(description="The id in the `credential_offer_uri`.")]
_OFFER_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "`offer_not_found`"}
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: PROBLEM_RESPONSES[503]}


# -- the issuing app ------------------------------------------------------------------------

issuing = APIRouter(
    prefix="/v1/credential-offers", tags=["wallet issuance"], responses=PROBLEM_RESPONSES
)


@issuing.post(
    "", status_code=201, response_model=OfferResponse, summary="Offer a credential to a wallet"
)
async def create_offer(
    body: OfferRequest,
    runtime: RuntimeDep,
    client: IssuingClient,
) -> Any:
    """Offer a credential to the citizen's wallet (OpenID4VCI, pre-authorized code flow).

    Show `qr_png`/`qr_svg` (or the `offer_uri` link) to the citizen and give them `tx_code`
    by another channel. The claims are checked now, exactly as for `POST /v1/credentials`,
    and kept in Redis only until the wallet has the credential or the offer expires
    (`THIQA_OFFER_TTL_SECONDS`). Follow the offer, and learn the credential's id, at
    `GET /v1/credential-offers/{offer_id}`."""
    offer = await runtime.wallet_issuance.create_offer(
        body.claims,
        client=client.name,
        vct=body.vct,
        valid_for_days=body.valid_for_days,
        tx_code=body.tx_code,
    )
    answer = OfferResponse(
        offer_id=offer.offer_id,
        credential_offer=CredentialOffer.model_validate(offer.document),
        credential_offer_uri=offer.credential_offer_uri,
        offer_uri=offer.offer_uri,
        tx_code=offer.tx_code,
        expires_at=timestamp(offer.expires_at),
        qr_png=base64.b64encode(offer.qr.png).decode("ascii"),
        qr_svg=offer.qr.svg,
    ).model_dump(by_alias=True)
    # The offer exactly as the wallet will fetch it: no ``tx_code: null`` member, which a
    # wallet would read as "a transaction code is required".
    answer["credential_offer"] = offer.document
    return JSONResponse(answer, status_code=201, headers=NO_STORE)  # carries code and PIN


@issuing.get(
    "/{offer_id}", response_model=OfferInfo, responses=_OFFER_NOT_FOUND, summary="Follow an offer"
)
async def get_offer(
    offer_id: OfferId,
    runtime: RuntimeDep,
    client: IssuingClient,
) -> OfferInfo:
    """Where an offer stands, and the credential's id once issued (to suspend or revoke it).
    Only to the client that made the offer (404 to any other). Known until the offer expires;
    after issuance, for `THIQA_OFFER_TTL_SECONDS` more."""
    status = await runtime.wallet_issuance.offer_status(offer_id, client=client.name)
    return OfferInfo(
        offer_id=status.offer_id,
        status=status.state.value,
        expires_at=timestamp(status.expires_at),
        credential_id=status.credential_id,
    )


# -- the wallet ------------------------------------------------------------------------------

wallet = APIRouter(tags=["wallet issuance"])


@wallet.get(
    "/credential-offers/{offer_id}",
    response_model=CredentialOffer,
    response_model_exclude_none=True,
    responses={**_OFFER_NOT_FOUND, **_UNAVAILABLE},
    summary="The credential offer, for the wallet",
)
async def credential_offer(
    offer_id: WalletOfferId, runtime: RuntimeDep, response: Response
) -> dict[str, Any]:
    """The Credential Offer object, by reference (`credential_offer_uri`). Answers while the
    pre-authorized code can still be redeemed."""
    if not OfferStore.is_offer_id(offer_id):
        raise OfferNotFound()  # as for an unknown id, without asking Redis
    document = await runtime.wallet_issuance.offer_document(offer_id)
    response.headers.update(NO_STORE)
    return document


@wallet.post(
    "/token",
    summary="Token endpoint (pre-authorized code grant)",
    response_model=TokenResponse,
    responses={
        400: {
            "model": OAuthErrorBody,
            "description": "`invalid_request` (missing or "
            "unexpected `tx_code`, malformed form), `invalid_grant` (unknown, expired "
            "or used code, wrong `tx_code`), `unsupported_grant_type`.",
        },
        **_UNAVAILABLE,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": schema_of(TokenRequestForm)}},
        }
    },
)
async def token(request: Request, runtime: RuntimeDep) -> Any:
    """OAuth 2.0 token endpoint: a pre-authorized code (and its transaction code) for a
    single-use access token. A wrong transaction code costs one of
    `THIQA_TX_CODE_MAX_ATTEMPTS` guesses; the last one withdraws the offer. A code used twice
    withdraws the offer and the token already granted for it."""
    if media_type(request) != FORM:
        raise InvalidTokenRequest(f"The body must be {FORM}.")
    form = await read_form(request)
    if form is None:
        raise InvalidTokenRequest("The form cannot be read (UTF-8 only, each parameter once).")
    grant = await runtime.wallet_issuance.token(form)
    return JSONResponse(
        TokenResponse(access_token=grant.access_token, expires_in=grant.expires_in).model_dump(),
        headers=NO_STORE,
    )


@wallet.post(
    "/nonce",
    response_model=NonceResponse,
    responses=_UNAVAILABLE,
    summary="Nonce endpoint (a c_nonce)",
)
async def nonce(runtime: RuntimeDep) -> Any:
    """A fresh `c_nonce` for the key proof: single-use, valid `THIQA_C_NONCE_TTL_SECONDS`."""
    value = await runtime.wallet_issuance.nonce()
    return JSONResponse(NonceResponse(c_nonce=value).model_dump(), headers=NO_STORE)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


@wallet.post(
    "/credential",
    summary="Credential endpoint",
    response_model=CredentialResponse,
    responses={
        400: {
            "model": OAuthErrorBody,
            "description": "`invalid_credential_request`, "
            "`unknown_credential_configuration`, `invalid_proof`, `invalid_nonce`, "
            "`invalid_encryption_parameters`, `credential_request_denied`.",
        },
        401: {
            "model": OAuthErrorBody,
            "description": "`invalid_token` (with "
            "`WWW-Authenticate`): no access token, or an unknown, expired or used one.",
        },
        **_UNAVAILABLE,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema_of(CredentialRequestBody)}},
        }
    },
)
async def credential(request: Request, runtime: RuntimeDep, audit: AuditDep) -> Any:
    """The credential endpoint: `Authorization: Bearer <access token>` and a key proof
    (`typ: openid4vci-proof+jwt`, the wallet's key as `jwk`, `aud` this issuer, a fresh `iat`,
    `nonce` an unused c_nonce). Answers one `dc+sd-jwt` credential bound to that key; its
    claims are deleted from Redis in the same step, and the access token is used up."""
    body: Any = None  # anything unreadable is refused as not being a JSON object
    if media_type(request) == "application/json":
        try:
            body = json_loads(await request.body())
        except EncodingError:
            body = None
    result = await runtime.wallet_issuance.credential(_bearer(request), body)
    issued = result.issued
    if result.client:
        await audit(
            AuditAction.CREDENTIAL_ISSUED,
            client=result.client,
            credential_id=issued.credential_id,
            vct=issued.vct or None,
            kid=issued.kid or None,
        )
    return JSONResponse(
        CredentialResponse(
            credentials=[IssuedCredentialItem(credential=issued.credential)]
        ).model_dump(),
        headers=NO_STORE,
    )


# -- metadata --------------------------------------------------------------------------------


def install_openid4vci(app: FastAPI, settings: Settings) -> None:
    """Add the offer, wallet and metadata routes. Metadata lives at the well-known path with
    the issuer's path appended (RFC 8414 §3), and also at the bare well-known path when the
    issuer has a path, as the JWT VC issuer metadata is."""
    app.include_router(issuing)
    app.include_router(wallet)
    issuer = settings.issuer_url

    async def issuer_metadata(runtime: RuntimeDep, response: Response) -> dict[str, Any]:
        """OpenID4VCI Credential Issuer metadata: endpoints, the `thiqa_national_id`
        configuration (`dc+sd-jwt`, its `vct`, key binding by `jwk`, proof algorithms) and
        display names in Arabic, French and English."""
        response.headers["Cache-Control"] = "public, max-age=300"
        return runtime.wallet_issuance.issuer_metadata(
            national_id_metadata(runtime.settings.national_id_vct)
        )

    async def as_metadata(runtime: RuntimeDep, response: Response) -> dict[str, Any]:
        """OAuth 2.0 authorization server metadata (RFC 8414): the token endpoint and the
        pre-authorized code grant, redeemable without client authentication."""
        response.headers["Cache-Control"] = "public, max-age=300"
        return runtime.wallet_issuance.authorization_server_metadata()

    for name, endpoint, model, summary in (
        (
            "openid-credential-issuer",
            issuer_metadata,
            CredentialIssuerMetadata,
            "Credential issuer metadata (OpenID4VCI)",
        ),
        (
            "oauth-authorization-server",
            as_metadata,
            AuthorizationServerMetadata,
            "Authorization server metadata (RFC 8414)",
        ),
    ):
        for path in sorted({f"/.well-known/{name}", vci.well_known_path(name, issuer)}):
            app.add_api_route(
                path,
                endpoint,
                methods=["GET"],
                tags=["wallet issuance"],
                response_model=model,
                response_model_exclude_none=True,
                summary=summary,
            )
