"""Thiqa's mdoc PKI: an IACA (the issuing authority's root, ISO/IEC 18013-5 Annex B) and one
document signer certificate under it, in ``keys/mdoc/``.

Created on first start, like the key ring: ``iaca.pem`` + ``iaca.key`` (the root; its key is
only needed to certify a new document signer), ``signer.pem`` + ``signer.key``. Private keys
are PKCS#8, mode 0600 from the first byte, encrypted when a passphrase is configured. The
document signer carries the ISO EKU 1.0.18013.5.1.2 and lives a year shorter than the IACA;
one whose certificate has run out is replaced by a new one under the same IACA, so verifiers
keep their single anchor. The IACA is what relying parties trust (``GET /mdoc/iaca.pem``).
"""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["MdocSigner", "MdocSignerError", "load_or_create_signer"]

DOCUMENT_SIGNER_EKU: Final = x509.ObjectIdentifier("1.0.18013.5.1.2")
IACA_YEARS: Final = 10
SIGNER_DAYS: Final = 3 * 365
_DIR: Final = "mdoc"


class MdocSignerError(RuntimeError):
    """keys/mdoc/ cannot be read (wrong passphrase, edited files, a key not matching its
    certificate)."""


@dataclass(frozen=True, slots=True)
class MdocSigner:
    iaca: x509.Certificate
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def kid(self) -> str:
        """Names the document signer in the credential records, as a kid names a JWS key:
        base64url of its certificate's SHA-256 fingerprint."""
        digest = self.certificate.fingerprint(hashes.SHA256())
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @property
    def x5chain(self) -> list[x509.Certificate]:
        """What an mdoc carries: the document signer only (verifiers hold the IACA)."""
        return [self.certificate]

    def iaca_pem(self) -> bytes:
        return self.iaca.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _iaca(key: ec.EllipticCurvePrivateKey, *, name: str, now: datetime) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} IACA"))
        .issuer_name(_name(f"{name} IACA"))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * IACA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _document_signer(
    key: ec.EllipticCurvePrivateKey,
    *,
    iaca: x509.Certificate,
    iaca_key: ec.EllipticCurvePrivateKey,
    name: str,
    now: datetime,
) -> x509.Certificate:
    not_after = min(now + timedelta(days=SIGNER_DAYS), iaca.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} document signer"))
        .issuer_name(iaca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNER_EKU]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(iaca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(iaca_key, hashes.SHA256())
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _private_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _read_key(path: Path, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError, OSError) as exc:
        raise MdocSignerError(f"cannot load {path.name}: wrong passphrase or not a key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise MdocSignerError(f"{path.name}: not an EC key")
    return key


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise MdocSignerError(f"cannot load {path.name}") from exc


def load_or_create_signer(
    keys_dir: Path, *, name: str, now: int, passphrase: bytes | None = None
) -> MdocSigner:
    """The IACA and a document signer valid at ``now``, creating what is missing."""
    folder = keys_dir / _DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    at = datetime.fromtimestamp(now, UTC)
    iaca_cert, iaca_key_path = folder / "iaca.pem", folder / "iaca.key"
    if iaca_cert.exists():
        iaca = _read_certificate(iaca_cert)
        iaca_key = _read_key(iaca_key_path, passphrase)
    else:
        iaca_key = ec.generate_private_key(ec.SECP256R1())
        iaca = _iaca(iaca_key, name=name, now=at)
        # Key first, certificate last: a crash in between leaves no certificate without key.
        _write(iaca_key_path, _private_pem(iaca_key, passphrase), private=True)
        _write(iaca_cert, iaca.public_bytes(serialization.Encoding.PEM), private=False)
    if iaca.public_key() != iaca_key.public_key():
        raise MdocSignerError("iaca.key does not match iaca.pem")
    signer_cert, signer_key_path = folder / "signer.pem", folder / "signer.key"
    if signer_cert.exists():
        certificate = _read_certificate(signer_cert)
        key = _read_key(signer_key_path, passphrase)
        # A mismatch is a replacement cut short between its two writes: make a new one.
        if (
            certificate.public_key() == key.public_key()
            and certificate.not_valid_after_utc > at + timedelta(days=1)
        ):
            return MdocSigner(iaca=iaca, certificate=certificate, key=key)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _document_signer(key, iaca=iaca, iaca_key=iaca_key, name=name, now=at)
    _write(signer_key_path, _private_pem(key, passphrase), private=True)
    _write(signer_cert, certificate.public_bytes(serialization.Encoding.PEM), private=False)
    return MdocSigner(iaca=iaca, certificate=certificate, key=key)
