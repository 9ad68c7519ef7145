"""The document signer's certificate chain (ISO/IEC 18013-5 Annex B): to an IACA the verifier
trusts, at a time the caller passes in.

cryptography's ``x509.verification`` builds and checks the path (signatures, validity, CA
constraints), with the same limits as :mod:`service.core.x509`. The mdoc profile differs from
that module's HAIP one in three ways, each for the IACAs and document signers in the field:
the document signer may carry the ISO EKU 1.0.18013.5.1.2 or the draft OID the EUDI reference
issuer still uses; an IACA may mark its own EKU critical (the EUDI IACAs do, and webpki's CA
profile refuses it); and a chain to no trusted IACA is ``untrusted_certificate`` even when a
certificate on it has also expired (which anchor it lacks is the news, as the EUDI verifier
reports it). No CRL or OCSP is fetched (a verifier never fetches what a token names); a
compromised IACA is removed from the anchors instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification

from service.core.reasons import Reason, VerificationFailure
from service.core.x509 import MAX_CERTIFICATE_SIZE, MAX_CHAIN_LENGTH, MDOC_DOCUMENT_SIGNER_EKU

__all__ = ["DOCUMENT_SIGNER_EKUS", "MAX_CHAIN_CERTIFICATES", "parse_x5chain", "verify_chain"]

#: ISO/IEC 18013-5:2021 id-mdl-kp-mdlDS, and the OID of its drafts that the EUDI reference
#: issuer's document signers still carry (1.3.130.2.0.0.1.2): refusing it would refuse every
#: PID from the EU reference implementation.
DOCUMENT_SIGNER_EKUS: Final = frozenset(
    {MDOC_DOCUMENT_SIGNER_EKU, x509.ObjectIdentifier("1.3.130.2.0.0.1.2")}
)
MAX_CHAIN_CERTIFICATES: Final = MAX_CHAIN_LENGTH


def parse_x5chain(value: Any) -> list[x509.Certificate]:
    """COSE ``x5chain`` (label 33): one DER certificate, or an array of them, leaf first."""
    ders = [value] if isinstance(value, bytes) else value
    if not isinstance(ders, list) or not ders or not all(isinstance(d, bytes) for d in ders):
        raise VerificationFailure(Reason.MDOC_MALFORMED, "x5chain missing or not DER")
    if len(ders) > MAX_CHAIN_CERTIFICATES or any(len(d) > MAX_CERTIFICATE_SIZE for d in ders):
        raise VerificationFailure(Reason.MDOC_MALFORMED, "x5chain too long or too large")
    try:
        return [x509.load_der_x509_certificate(der) for der in ders]
    except ValueError:
        raise VerificationFailure(Reason.MDOC_MALFORMED, "x5chain certificate unreadable") from None


def _has_document_signer_eku(_policy: Any, _cert: x509.Certificate, eku: Any) -> None:
    if eku is None or not DOCUMENT_SIGNER_EKUS & set(eku):
        raise ValueError("not a document signer certificate")


def _signs_digitally(_policy: Any, _cert: x509.Certificate, usage: Any) -> None:
    if usage is None or not usage.digital_signature:
        raise ValueError("key usage does not allow signatures")


_EE_POLICY: Final = (
    verification.ExtensionPolicy.permit_all()
    .require_present(
        x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _has_document_signer_eku
    )
    .require_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _signs_digitally)
)
#: The Web PKI's CA rules, except that an IACA may mark its EKU critical, as the EUDI
#: reference IACAs do (ISO/IEC 18013-5 Annex B sets no criticality for it).
_CA_POLICY: Final = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, None
)


def verify_chain(
    chain: Sequence[x509.Certificate],
    *,
    anchors: Sequence[x509.Certificate],
    now: int,
) -> tuple[ec.EllipticCurvePublicKey, x509.Certificate]:
    """The document signer's public key and the anchor its chain reached at ``now``.

    Raises ``untrusted_certificate`` when no path reaches an anchor; when one does but not
    at ``now``, ``certificate_not_yet_valid`` if the document signer's validity has not begun,
    else ``certificate_expired``.
    """
    if not anchors:
        raise VerificationFailure(Reason.UNTRUSTED_CERTIFICATE, "no trust anchors")
    leaf = chain[0]
    at = datetime.fromtimestamp(now, UTC)
    try:
        verified = _path(chain, anchors, at)
    except verification.VerificationError:
        # Tell a stale certificate from a foreign one: would the path hold while the
        # document signer was valid?
        try:
            _path(chain, anchors, leaf.not_valid_before_utc)
        except verification.VerificationError:
            raise VerificationFailure(Reason.UNTRUSTED_CERTIFICATE) from None
        if at < leaf.not_valid_before_utc:
            raise VerificationFailure(Reason.CERTIFICATE_NOT_YET_VALID) from None
        raise VerificationFailure(Reason.CERTIFICATE_EXPIRED) from None
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationFailure(Reason.UNSUPPORTED_ALGORITHM, "document signer key")
    return key, verified.chain[-1]


def _path(
    chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], at: datetime
) -> verification.VerifiedClient:
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(at.replace(tzinfo=None))
        .max_chain_depth(MAX_CHAIN_CERTIFICATES)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    return verifier.verify(chain[0], list(chain[1:]))
