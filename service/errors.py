"""The errors Thiqa answers with over HTTP, each with a stable machine code.

Exception tree::

    ThiqaError                      (500 internal_error)
    ├── InvalidRequest              (422 invalid_request)
    │   ├── InvalidClaims           (422 invalid_claims)
    │   ├── UnsupportedCredentialType (422 unsupported_vct)
    │   └── InvalidHolderKey        (422 invalid_holder_key)
    ├── RequestTooLarge             (413 request_too_large)
    ├── Unauthenticated             (401 unauthenticated)
    ├── InsufficientScope           (403 insufficient_scope)
    ├── NotFound                    (404 not_found)
    │   ├── CredentialNotFound      (404 credential_not_found)
    │   ├── ClientNotFound          (404 client_not_found)
    │   ├── StatusListNotFound      (404 status_list_not_found)
    │   └── PresentationRequestNotFound (404 presentation_request_not_found)
    ├── Conflict                    (409 conflict)
    │   ├── StatusConflict          (409 status_conflict)
    │   └── ClientExists            (409 client_exists)
    ├── PresentationRequestGone     (410 gone)
    │   ├── PresentationRequestExpired  (410 request_expired)
    │   └── PresentationRequestAnswered (410 request_answered)
    ├── RateLimited                 (429 rate_limited, with Retry-After)
    └── StoreUnavailable            (503 store_unavailable)

One handler turns any of them into an RFC 9457 problem; ``detail`` is written for people and
never carries a claim value, a key or a secret.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccessCertificateMissing",
    "ClientExists",
    "ClientNotFound",
    "Conflict",
    "CredentialNotFound",
    "InsufficientScope",
    "InvalidClaims",
    "InvalidHolderKey",
    "InvalidRequest",
    "NotFound",
    "PresentationRequestAnswered",
    "PresentationRequestExpired",
    "PresentationRequestGone",
    "PresentationRequestNotFound",
    "RateLimited",
    "RequestTooLarge",
    "ResponseCodeMismatch",
    "StatusConflict",
    "StatusListNotFound",
    "StoreUnavailable",
    "ThiqaError",
    "Unauthenticated",
    "UnsupportedCredentialType",
]


class ThiqaError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class InvalidRequest(ThiqaError):
    code, status, title = "invalid_request", 422, "The request is not valid"


class InvalidClaims(InvalidRequest):
    code, title = "invalid_claims", "The claims cannot be issued"


class UnsupportedCredentialType(InvalidRequest):
    code, title = "unsupported_vct", "This service does not issue that credential type"


class InvalidHolderKey(InvalidRequest):
    code, title = "invalid_holder_key", "holder_jwk is not a supported public key"


class RequestTooLarge(ThiqaError):
    code, status, title = "request_too_large", 413, "The request body is too large"


class Unauthenticated(ThiqaError):
    code, status, title = "unauthenticated", 401, "A valid API key is required"


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


class PresentationRequestGone(ThiqaError):
    code, status, title = "gone", 410, "The presentation request can no longer be answered"


class PresentationRequestExpired(PresentationRequestGone):
    code, title = "request_expired", "The presentation request has expired"


class PresentationRequestAnswered(PresentationRequestGone):
    code, title = "request_answered", "The presentation request has already been answered"


class Conflict(ThiqaError):
    code, status, title = "conflict", 409, "Conflict"


class StatusConflict(Conflict):
    code, title = "status_conflict", "The credential cannot move to that status"


class ClientExists(Conflict):
    code, title = "client_exists", "A client with this name exists"


class RateLimited(ThiqaError):
    code, status, title = "rate_limited", 429, "Too many requests for this API key"

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(f"Retry after {retry_after} seconds.", retry_after=retry_after)


class StoreUnavailable(ThiqaError):
    code, status, title = "store_unavailable", 503, "The status store cannot answer"


# --- X.509 and HAIP presentation requests (issue 10) ------------------------------------------


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
