"""Every error Thiqa answers over HTTP: one class each, with its code, status and body style.

Each class states, in one place, what a client sees: the stable machine ``code`` to branch on,
the HTTP ``status``, a fixed ``title`` and the body ``style``. Services raise these; they never
build an HTTP answer. ``service/api`` has one exception handler per style:

* ``PROBLEM``: an RFC 9457 problem (``application/problem+json``) with ``code``; the style of
  every API-key endpoint and of anything that is not a wallet protocol.
* ``OAUTH``: ``{"error", "error_description"}`` as OAuth 2.0 (RFC 6749 §5.2, RFC 6750 §3.1),
  OpenID4VCI and OpenID4VP define it, for the wallet-facing endpoints, because wallets are
  written against those specs. A class that names its own ``error`` (OpenID4VP's response
  endpoint answers the generic ``invalid_request``) adds Thiqa's ``code`` to the body.

Exception tree (problem details unless marked OAuth)::

    ThiqaError                      (500 internal_error)
    ├── BadRequest                  (400 bad_request)
    │   └── InvalidJson             (400 invalid_json)
    ├── Unauthenticated             (401 unauthenticated, with WWW-Authenticate)
    ├── InsufficientScope           (403 insufficient_scope)
    ├── NotFound                    (404 not_found)
    │   ├── CredentialNotFound, ClientNotFound, StatusListNotFound,
    │   └── PresentationRequestNotFound, OfferNotFound
    ├── MethodNotAllowed            (405 method_not_allowed)
    ├── NotAcceptable               (406 not_acceptable)
    ├── Conflict                    (409, a grouping)
    │   └── StatusConflict, ClientExists
    ├── PresentationRequestGone     (410, a grouping)
    │   └── PresentationRequestExpired, PresentationRequestAnswered
    ├── RequestTooLarge             (413 request_too_large)
    ├── UnsupportedMediaType        (415 unsupported_media_type)
    ├── InvalidRequest              (422 invalid_request)
    │   └── InvalidClaims, UnsupportedCredentialType, InvalidHolderKey,
    │       AccessCertificateMissing
    ├── ResponseCodeMismatch        (403 response_code_mismatch)
    ├── RateLimited                 (429 rate_limited, with Retry-After)
    ├── TooManyStreams              (429 too_many_streams, with Retry-After)
    ├── StoreUnavailable            (503 store_unavailable)
    │   ├── StatusUnavailable       (503 status_unavailable, carries the verdict)
    │   └── ChangeNotReplicated     (503 change_not_replicated)
    ├── KeyRingUnavailable          (503 keyring_unavailable: nothing can be signed)
    └── OAuthError                  (OAuth, a grouping)
        ├── InvalidTokenRequest, InvalidGrant, UnsupportedGrantType   (token endpoint)
        ├── InvalidCredentialRequest, UnknownCredentialConfiguration, InvalidProof,
        │   InvalidNonce, InvalidEncryptionParameters, CredentialRequestDenied,
        │   InvalidToken (401)                                        (credential endpoint)
        └── DirectPostError         (OpenID4VP response endpoint: error + code)
            └── MalformedResponse, StateMismatch, NonceReplayed, ResponseTooLate,
                UnknownPresentationRequest (404), PresentationRejected,
                ResponseStoreUnavailable (503), EncryptionRequired,
                UnsupportedEncryption, DecryptionFailed, ResponseTooLarge (413),
                OriginMismatch

``detail`` (``error_description``) is written for people and never carries a claim value, a
key or a secret. :func:`wire_errors` lists every class a client can meet: the README's tables,
the OpenAPI document and the tests read it, so none of them can drift from this module.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

__all__ = [
    "AccessCertificateMissing",
    "BadRequest",
    "BodyStyle",
    "ChangeNotReplicated",
    "ClientExists",
    "ClientNotFound",
    "Conflict",
    "CredentialNotFound",
    "CredentialRequestDenied",
    "DecryptionFailed",
    "DirectPostError",
    "EncryptionRequired",
    "InsufficientScope",
    "InvalidClaims",
    "InvalidCredentialRequest",
    "InvalidEncryptionParameters",
    "InvalidGrant",
    "InvalidHolderKey",
    "InvalidJson",
    "InvalidNonce",
    "InvalidProof",
    "InvalidRequest",
    "InvalidToken",
    "InvalidTokenRequest",
    "KeyRingUnavailable",
    "MalformedResponse",
    "MdocDeviceKeyRequired",
    "MethodNotAllowed",
    "NonceReplayed",
    "NotAcceptable",
    "NotFound",
    "OAuthError",
    "OfferNotFound",
    "OriginMismatch",
    "PresentationRejected",
    "PresentationRequestAnswered",
    "PresentationRequestExpired",
    "PresentationRequestGone",
    "PresentationRequestNotFound",
    "RateLimited",
    "RequestTooLarge",
    "ResponseCodeMismatch",
    "ResponseStoreUnavailable",
    "ResponseTooLarge",
    "ResponseTooLate",
    "StateMismatch",
    "StatusConflict",
    "StatusListNotFound",
    "StatusUnavailable",
    "StoreUnavailable",
    "ThiqaError",
    "TooManyStreams",
    "Unauthenticated",
    "UnknownCredentialConfiguration",
    "UnknownPresentationRequest",
    "UnsupportedCredentialFormat",
    "UnsupportedCredentialType",
    "UnsupportedEncryption",
    "UnsupportedGrantType",
    "UnsupportedMediaType",
    "wire_errors",
]


class BodyStyle(StrEnum):
    """How an error's body is shaped on the wire (one exception handler each)."""

    PROBLEM = "problem"  # RFC 9457
    OAUTH = "oauth"  # RFC 6749 §5.2, OpenID4VCI §8.3.1.2, OpenID4VP (direct_post)


class ThiqaError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    style: ClassVar[BodyStyle] = BodyStyle.PROBLEM
    #: True on a class that only groups others and is never answered itself. Read from the
    #: class's own namespace (:func:`wire_errors`): its subclasses are answered.
    grouping: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)

    def headers(self) -> dict[str, str]:
        """HTTP headers this error's answer carries besides its body."""
        return {}


def wire_errors() -> list[type[ThiqaError]]:
    """Every error class a client can meet, groupings left out, in definition order of the
    tree (depth first)."""

    def walk(cls: type[ThiqaError]) -> list[type[ThiqaError]]:
        own = [] if cls.__dict__.get("grouping", False) else [cls]
        return own + [found for sub in cls.__subclasses__() for found in walk(sub)]

    return walk(ThiqaError)


# -- problem details: requests the framework or the body reader refuses --------------------


class BadRequest(ThiqaError):
    code, status, title = "bad_request", 400, "Bad request"


class InvalidJson(BadRequest):
    code, title = "invalid_json", "The body is not strict JSON"


class MethodNotAllowed(ThiqaError):
    code, status, title = "method_not_allowed", 405, "Method not allowed"
    #: The methods the path takes, for ``Allow`` (RFC 9110 §15.5.6), when the raiser knows
    #: them (a request_uri: GET, and POST for request_uri_method=post).
    allow: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow} if self.allow else {}


class NotAcceptable(ThiqaError):
    code, status, title = "not_acceptable", 406, "Not acceptable"


class RequestTooLarge(ThiqaError):
    code, status, title = "request_too_large", 413, "The request body is too large"


class UnsupportedMediaType(ThiqaError):
    code, status, title = "unsupported_media_type", 415, "The body must be JSON"


# -- problem details: the API -------------------------------------------------------------


class InvalidRequest(ThiqaError):
    code, status, title = "invalid_request", 422, "The request is not valid"


class InvalidClaims(InvalidRequest):
    code, title = "invalid_claims", "The claims cannot be issued"


class UnsupportedCredentialType(InvalidRequest):
    code, title = "unsupported_vct", "This service does not issue that credential type"


class InvalidHolderKey(InvalidRequest):
    code, title = "invalid_holder_key", "holder_jwk is not a supported public key"


class Unauthenticated(ThiqaError):
    code, status, title = "unauthenticated", 401, "A valid API key is required"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InsufficientScope(ThiqaError):
    code, status, title = "insufficient_scope", 403, "The API key lacks the scope required"


class NotFound(ThiqaError):
    code, status, title = "not_found", 404, "Not found"


class CredentialNotFound(NotFound):
    code, title = "credential_not_found", "No credential with this id"


class ClientNotFound(NotFound):
    code, title = "client_not_found", "No client with this name"


class StatusListNotFound(NotFound):
    code, title = "status_list_not_found", "No status list with this id"


class PresentationRequestNotFound(NotFound):
    code, title = "presentation_request_not_found", "No presentation request with this id"


class OfferNotFound(NotFound):
    code, title = "offer_not_found", "No credential offer with this id"


class PresentationRequestGone(ThiqaError):
    code, status, title = "gone", 410, "The presentation request can no longer be answered"
    grouping = True


class PresentationRequestExpired(PresentationRequestGone):
    code, title = "request_expired", "The presentation request has expired"


class PresentationRequestAnswered(PresentationRequestGone):
    code, title = "request_answered", "The presentation request has already been answered"


class Conflict(ThiqaError):
    code, status, title = "conflict", 409, "Conflict"
    grouping = True


class StatusConflict(Conflict):
    code, title = "status_conflict", "The credential cannot move to that status"


class ClientExists(Conflict):
    code, title = "client_exists", "A client with this name exists"


class RateLimited(ThiqaError):
    code, status, title = "rate_limited", 429, "Too many requests for this API key"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        super().__init__(
            detail or f"Retry after {retry_after} seconds.", retry_after=retry_after, **extra
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extra["retry_after"])}


class StoreUnavailable(ThiqaError):
    code, status, title = "store_unavailable", 503, "The status store cannot answer"


class StatusUnavailable(StoreUnavailable):
    """A verification that could not reach Redis: the answer is a problem that is also a
    verdict (never valid), so a verifying app reads it like any other verdict.

    ``verdict`` is a :class:`service.core.verify.Verdict`; this module imports no layer, so it
    is typed loosely here and read by the problem handler and the OpenID4VP service.
    """

    code, title = "status_unavailable", "The credential's status could not be checked"

    def __init__(self, detail: str | None = None, *, verdict: Any, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.verdict = verdict


# -- OAuth 2.0 style: the wallet-facing endpoints -------------------------------------------


class OAuthError(ThiqaError):
    """Answered as ``{"error", "error_description"}``, never cached. ``error_description`` is
    fixed ASCII text (both specs restrict it to that) and never repeats what the wallet sent.
    """

    status = 400
    style = BodyStyle.OAUTH
    grouping = True
    #: The body's ``error`` when it is not ``code`` itself; the body then carries ``code``.
    error: ClassVar[str | None] = None


# OpenID4VCI token endpoint (RFC 6749 §5.2, OpenID4VCI §6.3) --------------------------------


class InvalidTokenRequest(OAuthError):
    code, title = "invalid_request", "The token request is not valid."


class InvalidGrant(OAuthError):
    code, title = "invalid_grant", "The pre-authorized code is unknown or expired."


class UnsupportedGrantType(OAuthError):
    code, title = "unsupported_grant_type", "Only the pre-authorized code grant is supported."


# OpenID4VCI credential endpoint (OpenID4VCI §8.3.1.2, RFC 6750 §3.1) -----------------------


class InvalidCredentialRequest(OAuthError):
    code, title = "invalid_credential_request", "The credential request is not valid."


class UnknownCredentialConfiguration(OAuthError):
    code, title = (
        "unknown_credential_configuration",
        "This issuer offers thiqa_national_id and thiqa_national_id_mdoc only.",
    )


class InvalidProof(OAuthError):
    code, title = "invalid_proof", "The key proof is not valid."


class InvalidNonce(OAuthError):
    code, title = "invalid_nonce", "The nonce is unknown, expired or used: get a new one."


class InvalidEncryptionParameters(OAuthError):
    code, title = (
        "invalid_encryption_parameters",
        "This issuer does not encrypt credential responses.",
    )


class CredentialRequestDenied(OAuthError):
    code, title = "credential_request_denied", "The credential can no longer be issued."


class InvalidToken(OAuthError):
    """No usable access token: 401 with a challenge naming the error (RFC 6750 §3)."""

    code, status, title = (
        "invalid_token",
        401,
        "The access token is missing, unknown, expired or used.",
    )

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer error="{self.code}", error_description="{self.detail}"'
        }


# OpenID4VP response endpoint (direct_post) ---------------------------------------------------


class DirectPostError(OAuthError):
    """The answer to a wallet's Authorization Response: OpenID4VP names no error codes for
    the response endpoint, so ``error`` is OAuth's ``invalid_request`` and ``code`` says
    which case it is."""

    error = "invalid_request"
    grouping = True


class MalformedResponse(DirectPostError):
    code, title = "malformed_response", "vp_token (or error) is missing."


class StateMismatch(DirectPostError):
    code, title = "state_mismatch", "state is not the one of this presentation request."


class NonceReplayed(DirectPostError):
    code, title = "nonce_replayed", "This request has already been answered; its nonce is spent."


class ResponseTooLate(DirectPostError):
    code, title = "request_expired", "This presentation request has expired."


class UnknownPresentationRequest(DirectPostError):
    code, status, title = (
        "presentation_request_not_found",
        404,
        "No presentation request with this id.",
    )


class PresentationRejected(DirectPostError):
    """Verified and refused; ``errors`` (an extra) lists the verdict's codes."""

    code, title = "presentation_rejected", "The presentation was not accepted."


class ResponseStoreUnavailable(DirectPostError):
    code, status, title = "store_unavailable", 503, "The answer could not be checked."
    error = "temporarily_unavailable"


# --- X.509 and HAIP presentation requests ---------------------------------------------------


class AccessCertificateMissing(InvalidRequest):
    code, title = (
        "access_certificate_missing",
        "No relying-party access certificate is configured to sign the request",
    )


class ResponseCodeMismatch(ThiqaError):
    code, status, title = (
        "response_code_mismatch",
        403,
        "The response_code is not the one the wallet returned for this request",
    )


class EncryptionRequired(DirectPostError):
    code, title = "encryption_required", "This request takes only an encrypted response."


class UnsupportedEncryption(DirectPostError):
    code, title = (
        "unsupported_encryption",
        "alg must be ECDH-ES and enc one the request offered (A128GCM, A256GCM).",
    )


class DecryptionFailed(DirectPostError):
    code, title = "decryption_failed", "The response does not decrypt with this request's key."


class ResponseTooLarge(DirectPostError):
    code, status, title = "response_too_large", 413, "The encrypted response is too large."


class OriginMismatch(DirectPostError):
    code, title = "origin_mismatch", "The origin is not one this request expects."


# -- Scale-out: several Thiqa processes, Redis Cluster and Sentinel ---------------------------


class TooManyStreams(ThiqaError):
    """Open event streams and long-polls are capped per client and per process: each costs a
    task and a look at Redis every second."""

    code, status, title = "too_many_streams", 429, "Too many open event streams and long-polls"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extra["retry_after"])}


class ChangeNotReplicated(StoreUnavailable):
    """The change is on the Redis master but not on enough replicas in time: a failover now
    could lose it. Repeating the request is safe (the change is idempotent)."""

    code, title = (
        "change_not_replicated",
        "The change may not have been kept: not enough Redis replicas confirmed it in time",
    )


# ISO/IEC 18013-5 mdoc credentials (service.core.mdoc).


class UnsupportedCredentialFormat(InvalidRequest):
    code, title = "unsupported_format", "This service does not issue that credential format"


class MdocDeviceKeyRequired(InvalidRequest):
    code, title = "device_key_required", "An mso_mdoc credential needs the holder's device key"


# --- Keys, ownership and remote status lists (hardening) ---------------------------------------


class KeyRingUnavailable(ThiqaError):
    code, status, title = (
        "keyring_unavailable",
        503,
        "The issuer's signing key cannot be loaded; nothing is signed",
    )
