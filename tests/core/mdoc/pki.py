"""Throwaway ISO-profile PKIs for tests: an IACA and a document signer under it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.core.mdoc.signer import DOCUMENT_SIGNER_EKUS

ISO_DS_EKU = x509.ObjectIdentifier("1.0.18013.5.1.2")
assert ISO_DS_EKU in DOCUMENT_SIGNER_EKUS


@dataclass(frozen=True)
class ThrowawayPKI:
    iaca: x509.Certificate
    iaca_key: ec.EllipticCurvePrivateKey
    signer: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MA"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_pki(
    *,
    not_before: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    days: int = 3650,
    eku: x509.ObjectIdentifier = ISO_DS_EKU,
    name: str = "Test",
) -> ThrowawayPKI:
    iaca_key = ec.generate_private_key(ec.SECP256R1())
    iaca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} IACA"))
        .issuer_name(_name(f"{name} IACA"))
        .public_key(iaca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days * 2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(iaca_key.public_key()), False)
        .sign(iaca_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} DS"))
        .issuer_name(iaca.subject)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(iaca_key.public_key()), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), False)
        .sign(iaca_key, hashes.SHA256())
    )
    return ThrowawayPKI(iaca, iaca_key, signer, signer_key)
