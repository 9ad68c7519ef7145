"""X.509 certificate chains: parsed with limits, validated to an operator's trust anchors.

HAIP 1.0 makes X.509 the trust model: an SD-JWT VC or a status-list token carries its signer's
chain in ``x5c`` (leaf first, without the trust anchor), a signed presentation request carries
the relying party's access certificate the same way, and an mdoc carries ``x5chain``. Every one
of them is checked here, the same way: by cryptography's ``x509.verification`` with an
explicit policy, at a time the caller passes in (this module never reads the clock).

A chain is never trusted for being well formed: it must build to one of the anchors the
operator configured for that purpose. Failures are typed by what a user must tell apart::

    untrusted_certificate          the chain does not lead to any configured anchor
    certificate_expired            a certificate of the chain is past its notAfter
    certificate_not_yet_valid      a certificate of the chain is before its notBefore
    invalid_certificate_chain      malformed, oversized, out of order, a bad signature,
                                   a CA or key-usage rule broken, a self-signed leaf

The validity period is checked here before path building because the path builder reports
every failure alike ("no valid chain"); the time rule is the same one it applies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from service.core.encoding import b64url_encode
from service.core.keys import PublicKey, VerificationKey, algorithm_for
from service.core.reasons import Reason, VerificationFailure

__all__ = [
    "MAX_CERTIFICATE_SIZE",
    "MAX_CHAIN_LENGTH",
    "MDOC_DOCUMENT_SIGNER_EKU",
    "ValidatedChain",
    "authority_key_identifier",
    "certificate_hash",
    "chain_to_x5c",
    "common_name",
    "load_pem_chain",
    "parse_der_chain",
    "parse_x5c",
    "validate_chain",
]

#: A leaf and up to three intermediates: deeper national hierarchies exist nowhere in the
#: field, and every certificate is one more signature to check for a stranger's token.
MAX_CHAIN_LENGTH: Final = 4
#: Bytes of DER per certificate; real ones are under 2 KB.
MAX_CERTIFICATE_SIZE: Final = 8 * 1024
#: Anchors in one store (a trust list names a handful per issuer).
MAX_ANCHORS: Final = 64


@dataclass(frozen=True, slots=True)
class ValidatedChain:
    """A chain that built to an anchor: the leaf, its public key and where it led."""

    leaf: x509.Certificate
    #: The chain as validated, leaf first, ending with the anchor.
    path: tuple[x509.Certificate, ...] = field(repr=False)
    #: SAN entries of the leaf, by kind.
    san_uris: frozenset[str] = frozenset()
    san_dns: frozenset[str] = frozenset()

    @property
    def anchor(self) -> x509.Certificate:
        return self.path[-1]

    def verification_key(self, *, kid: str = "x5c") -> VerificationKey:
        """The leaf's public key, bound to the one algorithm its curve allows."""
        key = self.leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "unsupported leaf key")
        try:
            alg = algorithm_for(key)
        except ValueError as exc:
            raise VerificationFailure(
                Reason.INVALID_CERTIFICATE_CHAIN, "unsupported leaf key"
            ) from exc
        public: PublicKey = key
        return VerificationKey(kid=kid, alg=alg, key=public)


def parse_x5c(value: object) -> tuple[x509.Certificate, ...]:
    """The certificates of a JOSE ``x5c`` header (RFC 7515 §4.1.6: standard base64 DER, leaf
    first), with the count and size limits applied before any certificate is parsed."""
    if not isinstance(value, list) or not value:
        raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "x5c must be a list")
    if len(value) > MAX_CHAIN_LENGTH:
        raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "x5c is too long")
    ders: list[bytes] = []
    for item in value:
        # Standard base64 of at most MAX_CERTIFICATE_SIZE bytes: 4/3 of it, rounded up.
        if not isinstance(item, str) or len(item) > (MAX_CERTIFICATE_SIZE * 4) // 3 + 4:
            raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "x5c entry too large")
        try:
            ders.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise VerificationFailure(
                Reason.INVALID_CERTIFICATE_CHAIN, "x5c entry is not base64"
            ) from exc
    return parse_der_chain(ders)


def parse_der_chain(ders: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """DER certificates (an mdoc ``x5chain``, leaf first) with the same limits as ``x5c``."""
    if not ders or len(ders) > MAX_CHAIN_LENGTH:
        raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "chain length")
    certificates: list[x509.Certificate] = []
    for der in ders:
        if len(der) > MAX_CERTIFICATE_SIZE:
            raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "certificate too large")
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise VerificationFailure(
                Reason.INVALID_CERTIFICATE_CHAIN, "not a DER certificate"
            ) from exc
    return tuple(certificates)


def load_pem_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle, in file order. Raises ``ValueError`` with a message
    for operators (this is the path for files, not for tokens)."""
    if len(pem) > MAX_CERTIFICATE_SIZE * 2 * MAX_ANCHORS:
        raise ValueError("the PEM file is larger than any certificate bundle should be")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ValueError("not a PEM certificate (or bundle of certificates)") from exc
    return tuple(certificates)


def chain_to_x5c(chain: Sequence[x509.Certificate]) -> list[str]:
    """``x5c`` as RFC 7515 spells it: standard base64 (with padding) of each DER."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain]


def certificate_hash(certificate: x509.Certificate) -> str:
    """OpenID4VP ``x509_hash``: base64url SHA-256 of the DER leaf certificate."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return b64url_encode(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


def authority_key_identifier(certificate: x509.Certificate) -> str:
    """DCQL ``trusted_authorities`` type ``aki``: base64url of the anchor's key identifier
    (its SubjectKeyIdentifier, which is what certificates it issues name as their AKI)."""
    try:
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        digest = ski.digest
    except x509.ExtensionNotFound:
        digest = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest
    return b64url_encode(digest)


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _check_period(chain: Sequence[x509.Certificate], when: datetime) -> None:
    for certificate in chain:
        if when > certificate.not_valid_after_utc:
            raise VerificationFailure(Reason.CERTIFICATE_EXPIRED)
        if when < certificate.not_valid_before_utc:
            raise VerificationFailure(Reason.CERTIFICATE_NOT_YET_VALID)


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _claims_anchor(certificate: x509.Certificate, anchor: x509.Certificate) -> bool:
    """The certificate is the anchor, or names it as issuer by name and key identifier."""
    if certificate == anchor:
        return True
    if certificate.issuer != anchor.subject:
        return False
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        aki = None
    if aki is None or aki.key_identifier is None:
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True
    return b64url_encode(aki.key_identifier) == authority_key_identifier(anchor)


def _sans(certificate: x509.Certificate) -> tuple[frozenset[str], frozenset[str]]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    uris = frozenset(san.get_values_for_type(x509.UniformResourceIdentifier))
    dns = frozenset(name.lower() for name in san.get_values_for_type(x509.DNSName))
    return uris, dns


def _leaf_policy(extended_key_usage: x509.ObjectIdentifier | None) -> ExtensionPolicy:
    """The leaf must be a signing certificate (keyUsage digitalSignature, not a CA); when the
    purpose has an EKU (an mdoc document signer), it must be present. Other extensions are
    allowed as RFC 5280 allows them: national PKIs add policies and AIA freely."""

    def _signing(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
        if usage is None or not usage.digital_signature:
            raise ValueError("leaf keyUsage must include digitalSignature")

    def _not_ca(
        _policy: object, _cert: x509.Certificate, constraints: x509.BasicConstraints | None
    ) -> None:
        if constraints is not None and constraints.ca:
            raise ValueError("leaf must not be a CA")

    policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _signing)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_ca)
    )
    if extended_key_usage is not None:
        wanted = extended_key_usage

        def _purpose(
            _policy: object, _cert: x509.Certificate, usage: x509.ExtendedKeyUsage | None
        ) -> None:
            if usage is None or wanted not in usage:
                raise ValueError("leaf extendedKeyUsage lacks the required purpose")

        policy = policy.require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _purpose)
    return policy


def validate_chain(
    chain: Sequence[x509.Certificate],
    *,
    anchors: Sequence[x509.Certificate],
    now: int,
    extended_key_usage: x509.ObjectIdentifier | None = None,
) -> ValidatedChain:
    """Build a path from ``chain[0]`` (the leaf) through ``chain[1:]`` to one of ``anchors``.

    The CA certificates must be CAs (webpki's CA profile: basicConstraints, keyCertSign, path
    length); the leaf must be a signing certificate, not self-signed (HAIP: the leaf is
    never the anchor), and carry ``extended_key_usage`` when one is given. Raises
    :class:`VerificationFailure` with one of the four certificate codes.
    """
    if not chain or len(chain) > MAX_CHAIN_LENGTH:
        raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "chain length")
    if not anchors:
        # A chain with nothing to anchor it proves nothing about who signed.
        raise VerificationFailure(Reason.UNTRUSTED_CERTIFICATE, "no trust anchor configured")
    leaf = chain[0]
    if _self_signed(leaf):
        raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN, "self-signed leaf")
    when = _moment(now)
    _check_period(chain, when)
    anchor_names = {anchor.subject for anchor in anchors}
    # Which anchor the chain claims to reach: the issuer of its last certificate (or the last
    # certificate itself, when a sender included the anchor).
    reaches_anchor = any(c.issuer in anchor_names or c in anchors for c in chain)
    if not reaches_anchor:
        raise VerificationFailure(Reason.UNTRUSTED_CERTIFICATE)
    builder = (
        PolicyBuilder()
        .store(Store(list(anchors)[:MAX_ANCHORS]))
        .time(when.replace(tzinfo=None))
        .max_chain_depth(MAX_CHAIN_LENGTH)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=_leaf_policy(extended_key_usage),
        )
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, list(chain[1:]))
    except VerificationError as exc:
        # A chain whose top certificate names no anchor's key leads to an unknown root,
        # even when it copies an anchor's name; any other failure (a bad signature by a key
        # that is an anchor's, a broken CA rule) is a broken chain.
        if not any(_claims_anchor(chain[-1], anchor) for anchor in anchors):
            raise VerificationFailure(Reason.UNTRUSTED_CERTIFICATE) from exc
        raise VerificationFailure(Reason.INVALID_CERTIFICATE_CHAIN) from exc
    path = tuple(verified.chain)
    _check_period(path, when)  # the anchor itself may have expired
    uris, dns = _sans(leaf)
    return ValidatedChain(leaf=leaf, path=path, san_uris=uris, san_dns=dns)


def common_name(certificate: x509.Certificate) -> str | None:
    """The subject's CN, for display only (never for a trust decision)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


#: The ISO 18013-5 document-signer purpose, for the mdoc profile.
MDOC_DOCUMENT_SIGNER_EKU: Final = x509.ObjectIdentifier("1.0.18013.5.1.2")
