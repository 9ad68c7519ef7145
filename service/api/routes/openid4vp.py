"""OpenID4VP 1.0 endpoints: a relying party asks for claims; the citizen's wallet answers.

Relying parties (scope ``verify``) create requests and read results as problem-details APIs
like the rest of ``/v1``. The two wallet-facing endpoints speak OpenID4VP: the Request Object
by reference, and the ``direct_post`` response endpoint, whose errors are OAuth-style JSON
(``{"error", "error_description", "code"}``) because wallets are written against that spec.
The form is read by hand, like the token endpoint's (``service/api/forms.py``); its refusals are
raised as ``service/errors.py`` classes and answered by the OAuth-style handler.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from service.api.auditing import AuditDep
from service.api.deps import RuntimeDep, VerifyingClient
from service.api.forms import FORM, NO_STORE, media_type, read_form
from service.api.metrics import MetricsDep
from service.api.negotiation import prefers_json
from service.api.openid4vp_models import (
    WAIT_DESCRIPTION,
    AuthorizationResponseForm,
    DcApiResponseBody,
    PresentationRequestBody,
    PresentationRequestCreated,
    PresentationStatus,
    WalletErrorBody,
)
from service.api.problems import PROBLEM_RESPONSES, Problem
from service.api.schemas import timestamp
from service.core.encoding import json_dumps
from service.core.openid4vp import REQUEST_OBJECT_MEDIA_TYPE, Outcome
from service.errors import (
    InvalidRequest,
    MalformedResponse,
    MethodNotAllowed,
    PresentationRequestNotFound,
    StoreUnavailable,
    UnknownPresentationRequest,
)
from service.services.openid4vp_verifier import MAX_WAIT_SECONDS, View
from service.services.qr import render_if_it_fits
from service.store.audit import AuditAction
from service.store.presentations import REQUEST_ID

__all__ = ["relying_party", "wallet"]

RequestId = Annotated[str, Path(max_length=64, description="As returned when it was made.")]
#: The wallet's endpoints check the id themselves (``_well_formed``): a wallet must get the
#: OpenID4VP answer for a request that does not exist, never the framework's 422 problem.
WalletRequestId = Annotated[str, Path(description="The id in the `request_uri` or `response_uri`.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "model": Problem,
        "description": "`presentation_request_not_found`: no such request, or another client's.",
    }
}

_TOO_MANY_STREAMS: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "`rate_limited`, or `too_many_streams`: this client (or this server) "
        "has as many event streams and long-polls open as it may (`Retry-After`).",
    }
}

# -- the relying party ----------------------------------------------------------------------

relying_party = APIRouter(
    prefix="/v1/presentation-requests", tags=["presentation requests"], responses=PROBLEM_RESPONSES
)


@relying_party.post(
    "",
    status_code=201,
    response_model=PresentationRequestCreated,
    summary="Ask a wallet for claims",
)
async def create_presentation_request(
    body: PresentationRequestBody,
    runtime: RuntimeDep,
    client: VerifyingClient,
    response: Response,
) -> PresentationRequestCreated:
    """Ask a citizen's wallet for claims (OpenID4VP 1.0, cross-device, `direct_post`).

    Show `qr_png`/`qr_svg` (or the `wallet_uri` link) to the citizen. Their wallet fetches
    the request, shows them `purpose`, and answers Thiqa directly; Thiqa verifies the
    presentation (signature, key binding to this request's nonce and client id, status, type,
    every requested claim). Read the result at `GET /v1/presentation-requests/{request_id}`
    (`?wait=` to long-poll) or follow `.../events`. The result holds only the claims you
    asked for."""
    created = await runtime.presentations.create(
        client.name,
        claims=body.claims,
        purpose=body.purpose,
        vct=body.vct,
        expires_in=body.expires_in,
        client_id_prefix=body.client_id_prefix,
        by_reference=body.request_mode == "reference",
        request_uri_method=body.request_uri_method,
        response_mode=body.response_mode,
        redirect_uri=body.redirect_uri,
        expected_origins=body.expected_origins,
        trusted_authorities=body.trusted_authorities,
    )
    qr = render_if_it_fits(created.wallet_uri) if created.wallet_uri is not None else None
    response.headers.update(NO_STORE)
    request = created.request
    return PresentationRequestCreated(
        request_id=request.request_id,
        nonce=request.nonce,
        client_id=request.client_id,
        request_uri=created.request_uri,
        expires_at=timestamp(request.expires_at),
        wallet_uri=created.wallet_uri,
        qr_png=base64.b64encode(qr.png).decode("ascii") if qr else None,
        qr_svg=qr.svg if qr else None,
        dc_api_request=created.dc_api_request,
    )


@relying_party.get(
    "/{request_id}",
    response_model=PresentationStatus,
    responses={**_NOT_FOUND, **_TOO_MANY_STREAMS},
    summary="A presentation request's state and verdict",
)
async def get_presentation_request(
    request_id: RequestId,
    runtime: RuntimeDep,
    client: VerifyingClient,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_SECONDS, description=WAIT_DESCRIPTION)] = 0,
    response_code: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Same-device requests: the code the wallet appended to your "
            "`redirect_uri`; without it the verdict stays null, a wrong one is 403.",
        ),
    ] = None,
) -> Any:
    """Where the request stands, and the verdict once the wallet has answered. Only the
    client that made the request can read it (others get 404). Kept until the request
    expires, and for `THIQA_PRESENTATION_RESULT_TTL_SECONDS` after the answer."""
    view = await runtime.presentations.wait(
        request_id, client.name, wait, response_code=response_code
    )
    return JSONResponse(view.body(), headers=NO_STORE)


@relying_party.post(
    "/{request_id}/dc-api-response",
    summary="Hand over what the Digital Credentials API returned",
    responses={
        200: {
            "description": "Accepted: `{}`; read the verdict as for any request.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        400: {
            "model": WalletErrorBody,
            "description": "OAuth-style, as the response endpoint answers a wallet: "
            "`origin_mismatch`, `encryption_required`, `unsupported_encryption`, "
            "`decryption_failed`, `malformed_response`, `nonce_replayed`, `request_expired` "
            "or `presentation_rejected`; a problem for a body that is not JSON "
            "(`invalid_json`).",
        },
        **_NOT_FOUND,
    },
)
async def dc_api_response(
    request_id: RequestId,
    body: DcApiResponseBody,
    runtime: RuntimeDep,
    client: VerifyingClient,
    audit: AuditDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """Your page called `navigator.credentials.get` with `dc_api_request`; post the
    credential's `data` here with the page's origin. Thiqa decrypts it (`dc_api.jwt`),
    checks the origin is an expected one and the KB-JWT names `origin:<origin>`, and
    verifies the presentation like any other."""
    answered = await runtime.presentations.answer_dc_api(
        request_id,
        client.name,
        origin=body.origin,
        data=body.data,
        spent=_recorder(audit, metrics),
    )
    return JSONResponse(answered, headers=NO_STORE)


def _recorder(audit: Any, metrics: Any) -> Any:
    def spent(outcome: Outcome, client: str) -> None:
        # A verification like POST /v1/verify's, on the relying party's behalf; written after
        # the response, as there. Issuer, type and codes; never a claim.
        metrics.observe_verdict(outcome)
        audit.soon(
            AuditAction.CREDENTIAL_VERIFIED,
            client=client,
            result=["valid"] if outcome.valid else [f.reason.value for f in outcome.failures],
            issuer=outcome.issuer,
            vct=outcome.vct,
        )

    return spent


def _event(view: View) -> str:
    return f"event: state\ndata: {json_dumps(view.body())}\n\n"


@relying_party.get(
    "/{request_id}/events",
    summary="Follow a presentation request (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: an `event: state` with the current state "
            "(the body of `GET /v1/presentation-requests/{request_id}`) at once, then one "
            "at each change; the stream ends after the final state (`completed`, `failed` "
            "or `expired`). Comment lines keep an idle stream open. If Redis stops "
            'answering mid-stream, an `event: error` with `{"code": '
            '"store_unavailable"}` ends it.',
            # The schema describes one event (OpenAPI 3.2 §4.14.4 reading of SSE), whose
            # data is the JSON text of the state body or of the error.
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"enum": ["state", "error"]},
                            "data": {"type": "string"},
                        },
                    }
                }
            },
        },
        **_NOT_FOUND,
        **_TOO_MANY_STREAMS,
    },
)
async def presentation_request_events(
    request_id: RequestId,
    runtime: RuntimeDep,
    client: VerifyingClient,
) -> StreamingResponse:
    """Follow the request as Server-Sent Events until it is answered or expires."""
    presenter = runtime.presentations
    first = await presenter.view(request_id, client.name)  # a 404 before any stream
    lease = presenter.streams.open(client.name)  # a 429 before any stream

    async def stream() -> AsyncIterator[str]:
        try:
            async for view in presenter.events(first, client.name):
                yield _event(view) if view is not None else ": keep-alive\n\n"
        except StoreUnavailable:
            yield 'event: error\ndata: {"code":"store_unavailable"}\n\n'
        finally:
            lease.release()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},  # nginx: deliver each event now
        # Also after the response, in case the stream never started (a client gone at once).
        background=BackgroundTask(lease.release),
    )


# -- the wallet ------------------------------------------------------------------------------

wallet = APIRouter(tags=["presentation requests"])

_GONE: dict[int | str, dict[str, Any]] = {
    410: {
        "model": Problem,
        "description": "`request_expired`, or `request_answered`: "
        "the request can no longer be answered.",
    }
}


def _well_formed(request_id: str) -> bool:
    # What service.core.openid4vp.new_secret makes; anything else cannot exist, so it is
    # answered as an unknown id without asking Redis.
    return REQUEST_ID.fullmatch(request_id) is not None


@wallet.get(
    "/presentation-requests/{request_id}",
    summary="The Authorization Request, for the wallet",
    responses={
        200: {
            "description": "The Authorization Request: a Request Object "
            f"(`{REQUEST_OBJECT_MEDIA_TYPE}`) signed with the access certificate (`x5c`), "
            "or the same parameters as JSON for `Accept: application/json`.",
            "content": {
                REQUEST_OBJECT_MEDIA_TYPE: {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        **_NOT_FOUND,
        **_GONE,
        503: PROBLEM_RESPONSES[503],
    },
)
async def presentation_request_object(
    request_id: WalletRequestId, request: Request, runtime: RuntimeDep
) -> Response:
    """The request a wallet fetches from `request_uri` (public): a Request Object signed
    with the access certificate (`x5c`, `typ: oauth-authz-req+jwt`) carrying `client_id`,
    `response_type` `vp_token`, `response_mode`, `response_uri`, `nonce`, `state`,
    `dcql_query` and `client_metadata` (the response encryption key, the `purpose` and the
    relying party's name). Served while the request can still be answered."""
    if not _well_formed(request_id):
        raise PresentationRequestNotFound()
    presentation, request_object = await runtime.presentations.request_object_for_wallet(request_id)
    if prefers_json(request.headers.get("accept", ""), REQUEST_OBJECT_MEDIA_TYPE):
        return JSONResponse(presentation.parameters(), headers=NO_STORE)
    return Response(request_object, media_type=REQUEST_OBJECT_MEDIA_TYPE, headers=NO_STORE)


@wallet.api_route(
    "/presentation-requests/{request_id}",
    methods=["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
    include_in_schema=False,
)
async def presentation_request_other_methods(request_id: WalletRequestId) -> Response:
    """Any other method: 405 naming both routes' methods (Starlette names only the first)."""
    refused = MethodNotAllowed()
    refused.allow = "GET, POST"
    raise refused


@wallet.post(
    "/presentation-requests/{request_id}",
    response_class=Response,
    summary="The Authorization Request, for a wallet using request_uri_method=post",
    responses={
        200: {
            "description": "The signed Request Object with the wallet's `wallet_nonce`.",
            "content": {REQUEST_OBJECT_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **_NOT_FOUND,
        **_GONE,
        422: PROBLEM_RESPONSES[422],
    },
    openapi_extra={
        "requestBody": {
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "wallet_nonce": {"type": "string", "maxLength": 256},
                            "wallet_metadata": {"type": "string"},
                        },
                    }
                }
            }
        }
    },
)
async def presentation_request_object_post(
    request_id: WalletRequestId, request: Request, runtime: RuntimeDep
) -> Response:
    """OpenID4VP 1.0 §5.10: the wallet POSTs its `wallet_nonce` (and metadata); the signed
    Request Object echoes the nonce, so a replayed object is recognised by the wallet."""
    if not _well_formed(request_id):
        raise PresentationRequestNotFound()
    form = await read_form(request) if media_type(request) == FORM else {}
    if form is None:
        raise InvalidRequest("The body must be a form, each parameter once.")
    nonce = form.get("wallet_nonce")
    if nonce is not None and not 1 <= len(nonce) <= 256:
        raise InvalidRequest("wallet_nonce must be 1 to 256 characters.")
    _, request_object = await runtime.presentations.request_object_for_wallet(
        request_id, wallet_nonce=nonce
    )
    return Response(request_object, media_type=REQUEST_OBJECT_MEDIA_TYPE, headers=NO_STORE)


@wallet.post(
    "/presentation-responses/{request_id}",
    summary="The response endpoint (direct_post), for the wallet",
    responses={
        200: {
            "description": 'Processed and accepted: `{}`, or `{"redirect_uri"}` with a '
            "`response_code` for a same-device request.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        400: {
            "model": WalletErrorBody,
            "description": "`error: invalid_request` with `code`: "
            "`malformed_response` (not a form, a repeated parameter, neither `vp_token` nor "
            "`error`, a `response` that is not a JWE), `state_mismatch`, `nonce_replayed` "
            "(already answered), `request_expired`, `encryption_required`, "
            "`unsupported_encryption`, `decryption_failed`, or `presentation_rejected` with "
            "the verdict's `errors`.",
        },
        404: {"model": WalletErrorBody, "description": "`presentation_request_not_found`."},
        413: {"model": WalletErrorBody, "description": "`response_too_large`."},
        503: {
            "model": WalletErrorBody,
            "description": "`error: temporarily_unavailable`, `code: store_unavailable`.",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": AuthorizationResponseForm.model_json_schema()}},
        }
    },
)
async def presentation_response(
    request_id: WalletRequestId,
    request: Request,
    runtime: RuntimeDep,
    audit: AuditDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """The `response_uri` (public): the wallet's Authorization Response by `direct_post`.

    The first answer that carries the request's `state` before it expires spends the
    request's nonce, whatever it holds: any later answer is `nonce_replayed`. A wallet's error
    response (`error=access_denied`, say) is recorded as a failed verdict and answered 200."""
    form = await read_form(request)
    if form is None:
        raise MalformedResponse(f"The body must be a {FORM} form, each parameter once.")
    if not _well_formed(request_id):
        raise UnknownPresentationRequest()

    answered = await runtime.presentations.answer(request_id, form, spent=_recorder(audit, metrics))
    return JSONResponse(answered, headers=NO_STORE)
