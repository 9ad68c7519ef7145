"""Why a credential is not valid: the stable codes of a verdict.

Government apps branch on these codes, so they never change meaning. Each message is fixed
text: it never repeats a claim value, a key or which internal step tripped beyond the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Failure", "Reason", "VerificationFailure"]


class Reason(StrEnum):
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNKNOWN_ISSUER = "unknown_issuer"
    UNKNOWN_KEY = "unknown_key"
    KEY_REVOKED = "key_revoked"
    UNTRUSTED_TYPE = "untrusted_type"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_DISCLOSURE = "invalid_disclosure"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    KEY_BINDING_REQUIRED = "key_binding_required"
    INVALID_KEY_BINDING = "invalid_key_binding"
    NONCE_MISMATCH = "nonce_mismatch"
    AUDIENCE_MISMATCH = "audience_mismatch"
    INVALID_STATUS_REFERENCE = "invalid_status_reference"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    STATUS_UNAVAILABLE = "status_unavailable"
    # A presentation answering an OpenID4VP request (service.core.openid4vp).
    VCT_MISMATCH = "vct_mismatch"
    MISSING_CLAIMS = "missing_claims"
    INVALID_VP_TOKEN = "invalid_vp_token"  # noqa: S105 - a code, not a secret
    WALLET_ERROR = "wallet_error"
    # X.509 (service.core.x509): an x5c chain in a credential, a status-list token or a
    # presentation request.
    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    INVALID_CERTIFICATE_CHAIN = "invalid_certificate_chain"
    CERTIFICATE_MISMATCH = "certificate_mismatch"


MESSAGES: dict[Reason, str] = {
    Reason.MALFORMED: "The credential is not a well-formed SD-JWT.",
    Reason.TOO_LARGE: "The credential is larger than this service accepts.",
    Reason.WRONG_TYPE: "The token's typ is not the one expected here.",
    Reason.UNSUPPORTED_ALGORITHM: "The signature algorithm is not allowed.",
    Reason.UNKNOWN_ISSUER: "The issuer is not trusted by this service.",
    Reason.UNKNOWN_KEY: "The issuer has no key with this kid.",
    Reason.KEY_REVOKED: "The issuer revoked the key that signed this credential.",
    Reason.UNTRUSTED_TYPE: "The issuer is not trusted for this credential type.",
    Reason.INVALID_SIGNATURE: "The issuer's signature does not verify.",
    Reason.INVALID_DISCLOSURE: "A disclosure is malformed, unreferenced or repeated.",
    Reason.EXPIRED: "The credential has expired.",
    Reason.NOT_YET_VALID: "The credential is not valid yet.",
    Reason.KEY_BINDING_REQUIRED: "A key-binding JWT from the holder is required.",
    Reason.INVALID_KEY_BINDING: "The key-binding JWT is invalid.",
    Reason.NONCE_MISMATCH: "The key-binding JWT was made for another nonce.",
    Reason.AUDIENCE_MISMATCH: "The key-binding JWT was made for another audience.",
    Reason.INVALID_STATUS_REFERENCE: "The credential's status reference is invalid.",
    Reason.REVOKED: "The credential has been revoked.",
    Reason.SUSPENDED: "The credential is suspended.",
    Reason.STATUS_UNAVAILABLE: "The credential's status could not be checked.",
    Reason.VCT_MISMATCH: "The credential is not of the requested type.",
    Reason.MISSING_CLAIMS: "The presentation does not disclose every requested claim.",
    Reason.INVALID_VP_TOKEN: "The vp_token does not answer the request's DCQL query.",
    Reason.WALLET_ERROR: "The wallet answered with an error instead of a presentation.",
    Reason.UNTRUSTED_CERTIFICATE: "The certificate chain does not lead to a trusted root.",
    Reason.CERTIFICATE_EXPIRED: "A certificate of the chain has expired.",
    Reason.CERTIFICATE_NOT_YET_VALID: "A certificate of the chain is not valid yet.",
    Reason.INVALID_CERTIFICATE_CHAIN: "The certificate chain is malformed or does not verify.",
    Reason.CERTIFICATE_MISMATCH: "The certificate does not name the issuer of the credential.",
}


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: a stable code and a human sentence safe to show anyone."""

    reason: Reason
    message: str

    @classmethod
    def of(cls, reason: Reason, detail: str | None = None) -> Failure:
        text = MESSAGES[reason]
        return cls(reason, f"{text} ({detail})" if detail else text)


class VerificationFailure(Exception):
    """Raised by a check that cannot go on; carries the :class:`Failure` it found."""

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        self.failure = Failure.of(reason, detail)
        super().__init__(self.failure.message)

    @property
    def reason(self) -> Reason:
        return self.failure.reason
