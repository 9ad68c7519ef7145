"""The operator's X.509 certificates: a development root, the issuer's signing certificates,
the relying-party access certificate, and chains imported from a national PKI.

Files live in ``<keys_dir>/pki/``::

    root.pem              the trust anchor every chain below was validated against
    root.key.pem          only for a root made here (``thiqa pki init``); 0600, passphrase
    issuer/<kid>.pem      the chain for issuer key <kid>: leaf first, no root (``x5c``)
    access.key.pem        the relying party's request-signing key; 0600, passphrase
    access.pem            its chain: leaf first, no root

A root made here is for tests and demonstrations; in production the national PKI issues the
certificates and ``thiqa pki import-*`` brings them in. Either way every chain is validated
when it is written and again when it is loaded (:func:`load_issuer_chain`,
:func:`load_access`), against the root, at the current time, with the same rules a verifier
applies (:mod:`service.core.x509`): a certificate that would not verify elsewhere is refused
here with a clear :class:`CertificateError` instead of being handed out.

Issuing is driven by a :class:`Profile` (key usage, extended key usage, validity, CA or not),
so another kind of certificate (an ISO 18013-5 document signer under an IACA) is one more
profile, not another code path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from service.core.keys import PrivateKey, SigningKey, algorithm_for, jwk_thumbprint, public_jwk
from service.core.reasons import VerificationFailure
from service.core.x509 import (
    MDOC_DOCUMENT_SIGNER_EKU,
    ValidatedChain,
    chain_to_x5c,
    load_pem_chain,
    validate_chain,
)
from service.keyring.keyring import ChainLoader, KeyRing, KeyRingError

__all__ = [
    "ACCESS",
    "DOCUMENT_SIGNER",
    "ISSUER_SIGNING",
    "ROOT_CA",
    "AccessCredential",
    "CertificateError",
    "Pki",
    "Profile",
    "access_host",
    "issue_certificate",
    "make_root",
    "read_certificates",
    "read_private_key",
]


class CertificateError(ValueError):
    """A certificate or chain that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What a kind of certificate may do, and for how long."""

    name: str
    validity_days: int
    ca: bool = False
    path_length: int | None = None
    #: Extended key usages, if the purpose has one (an mdoc document signer does).
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()


ROOT_CA: Final = Profile("root CA", validity_days=10 * 365, ca=True, path_length=1)
#: The issuer's signing certificate: SAN URI = the issuer URL (SD-JWT VC, x5c rule).
ISSUER_SIGNING: Final = Profile("issuer signing", validity_days=2 * 365)
#: The relying party's access certificate: SAN DNS = its host (x509_san_dns, x509_hash).
ACCESS: Final = Profile("relying-party access", validity_days=365)
#: ISO 18013-5 document signer, under an IACA root (the mdoc work adds its use).
DOCUMENT_SIGNER: Final = Profile(
    "document signer", validity_days=2 * 365, extended_key_usage=(MDOC_DOCUMENT_SIGNER_EKU,)
)

ROOT: Final = "root.pem"
ROOT_KEY: Final = "root.key.pem"
ACCESS_KEY: Final = "access.key.pem"
ACCESS_CHAIN: Final = "access.pem"
ISSUER_DIR: Final = "issuer"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Thiqa"),
        ]
    )


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None  # Ed25519 signs the message itself
    return hashes.SHA384() if key.curve.key_size > 256 else hashes.SHA256()


def issue_certificate(
    profile: Profile,
    *,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    issuer_certificate: x509.Certificate | None,
    issuer_key: PrivateKey,
    now: int,
    san: Sequence[x509.GeneralName] = (),
    validity_days: int | None = None,
) -> x509.Certificate:
    """Sign a certificate of ``profile`` for ``public_key``; ``issuer_certificate`` None
    makes it self-signed (a root)."""
    start = datetime.fromtimestamp(now, UTC) - timedelta(minutes=5)  # tolerate small skew
    days = validity_days or profile.validity_days
    issuer_name = subject if issuer_certificate is None else issuer_certificate.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(
            x509.BasicConstraints(ca=profile.ca, path_length=profile.path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not profile.ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=profile.ca,
                crl_sign=profile.ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    authority = issuer_certificate.public_key() if issuer_certificate else public_key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority),  # type: ignore[arg-type]
        critical=False,
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    if profile.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(profile.extended_key_usage)), critical=True
        )
    return builder.sign(issuer_key, _hash_for(issuer_key))  # type: ignore[arg-type]


def make_root(
    common_name: str, *, now: int, validity_days: int | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new P-256 root CA (tests and demonstrations; production roots come from a PKI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = issue_certificate(
        ROOT_CA,
        subject=_name(common_name),
        public_key=key.public_key(),
        issuer_certificate=None,
        issuer_key=key,
        now=now,
        validity_days=validity_days,
    )
    return certificate, key


def _pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; private files are 0600 from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _private_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _read_private(path: Path, passphrase: bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except FileNotFoundError as exc:
        raise CertificateError(f"{path} is missing") from exc
    except (ValueError, TypeError, OSError) as exc:
        raise CertificateError(f"cannot load {path.name}: wrong passphrase or not a key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertificateError(f"{path.name}: unsupported key type")
    return key


def _read_chain(path: Path) -> tuple[x509.Certificate, ...]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CertificateError(f"{path} is missing") from exc
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        chain = load_pem_chain(data)
    except ValueError as exc:
        raise CertificateError(f"{path}: {exc}") from exc
    if not chain:
        raise CertificateError(f"{path} holds no certificate")
    return chain


def _validated(
    chain: Sequence[x509.Certificate], root: x509.Certificate, *, now: int, what: str
) -> ValidatedChain:
    # A chain written with its root included is accepted on import and stored without it.
    try:
        return validate_chain(chain, anchors=[root], now=now)
    except VerificationFailure as failure:
        raise CertificateError(f"{what}: {failure.failure.message} ({failure.reason})") from None


def _same_key(certificate: x509.Certificate, key: PrivateKey) -> bool:
    ours = public_jwk(key)
    theirs = certificate.public_key()
    if not isinstance(theirs, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return False
    try:
        return public_jwk(theirs) == ours
    except (KeyError, ValueError):
        return False


def _without_root(
    chain: Sequence[x509.Certificate], root: x509.Certificate
) -> tuple[x509.Certificate, ...]:
    return tuple(c for c in chain if c != root)


@dataclass(frozen=True, slots=True)
class AccessCredential:
    """The relying party's request-signing key with its validated chain (leaf first)."""

    key: SigningKey
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    root: x509.Certificate = field(repr=False)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


class Pki:
    """The ``pki/`` folder of a keys folder."""

    def __init__(self, keys_dir: Path, *, passphrase: bytes | None = None) -> None:
        self.dir = keys_dir / "pki"
        self._passphrase = passphrase

    # --- the root -------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return (self.dir / ROOT).exists()

    @property
    def can_issue(self) -> bool:
        """A root made here, whose key can sign more certificates."""
        return (self.dir / ROOT_KEY).exists()

    def root(self) -> x509.Certificate:
        chain = _read_chain(self.dir / ROOT)
        if len(chain) != 1:
            raise CertificateError(f"{self.dir / ROOT} must hold exactly one certificate")
        root = chain[0]
        try:
            root.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(f"{self.dir / ROOT} is not a self-signed root") from exc
        return root

    def init(self, *, common_name: str, now: int, force: bool = False) -> x509.Certificate:
        """Make a development root here. Refuses to replace an existing root unless forced."""
        if self.exists and not force:
            raise CertificateError(f"{self.dir / ROOT} exists (use --force to replace it)")
        certificate, key = make_root(common_name, now=now)
        _write(self.dir / ROOT_KEY, _private_pem(key, self._passphrase), private=True)
        _write(self.dir / ROOT, _pem([certificate]))
        return certificate

    def set_root(self, root: x509.Certificate) -> None:
        """Trust ``root`` for the chains imported next (a national PKI's root)."""
        try:
            root.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError("the root is not a self-signed certificate") from exc
        if self.can_issue:
            raise CertificateError(
                "this folder has a development root with its key; remove pki/ to import a "
                "national PKI instead"
            )
        _write(self.dir / ROOT, _pem([root]))

    def _root_key(self) -> PrivateKey:
        return _read_private(self.dir / ROOT_KEY, self._passphrase)

    # --- the issuer's signing certificates -----------------------------------------------

    def issuer_path(self, kid: str) -> Path:
        return self.dir / ISSUER_DIR / f"{kid}.pem"

    def certify_issuer_key(self, key: SigningKey, *, issuer_url: str, now: int) -> ValidatedChain:
        """Issue the signing certificate of ``key`` from the development root (SAN URI =
        ``issuer_url``) and store it."""
        root = self.root()
        certificate = issue_certificate(
            ISSUER_SIGNING,
            subject=_name(f"{urlsplit(issuer_url).hostname or 'issuer'} credential signer"),
            public_key=key.key.public_key(),
            issuer_certificate=root,
            issuer_key=self._root_key(),
            now=now,
            san=[x509.UniformResourceIdentifier(issuer_url)],
        )
        return self.import_issuer_chain(key, [certificate], issuer_url=issuer_url, now=now)

    def import_issuer_chain(
        self,
        key: SigningKey,
        chain: Sequence[x509.Certificate],
        *,
        issuer_url: str,
        now: int,
    ) -> ValidatedChain:
        """Store a chain (leaf first) for ``key`` after checking it as a verifier will."""
        root = self.root()
        chain = _without_root(chain, root)
        validated = self._check_issuer_chain(chain, root, key=key, issuer_url=issuer_url, now=now)
        _write(self.issuer_path(key.kid), _pem(chain))
        return validated

    def _check_issuer_chain(
        self,
        chain: Sequence[x509.Certificate],
        root: x509.Certificate,
        *,
        key: SigningKey,
        issuer_url: str,
        now: int,
    ) -> ValidatedChain:
        what = f"issuer certificate for key {key.kid}"
        if not chain:
            raise CertificateError(f"{what}: the chain is empty")
        if not _same_key(chain[0], key.key):
            raise CertificateError(f"{what}: the leaf certifies another key")
        validated = _validated(chain, root, now=now, what=what)
        if issuer_url not in validated.san_uris:
            raise CertificateError(
                f"{what}: the leaf's SAN URI must be the issuer URL {issuer_url}"
            )
        return validated

    def load_issuer_chain(
        self, key: SigningKey, *, issuer_url: str, now: int
    ) -> tuple[x509.Certificate, ...] | None:
        """The validated chain of ``key`` (leaf first, no root), or None if it has none."""
        path = self.issuer_path(key.kid)
        if not path.exists():
            return None
        chain = _read_chain(path)
        self._check_issuer_chain(chain, self.root(), key=key, issuer_url=issuer_url, now=now)
        return chain

    # --- the relying party's access certificate ------------------------------------------

    def issue_access(self, *, host: str, now: int) -> AccessCredential:
        """A new request-signing key and its access certificate (SAN DNS = ``host``)."""
        root = self.root()
        private = ec.generate_private_key(ec.SECP256R1())
        certificate = issue_certificate(
            ACCESS,
            subject=_name(f"{host} relying party"),
            public_key=private.public_key(),
            issuer_certificate=root,
            issuer_key=self._root_key(),
            now=now,
            san=[x509.DNSName(host)],
        )
        return self.import_access(private, [certificate], host=host, now=now)

    def import_access(
        self,
        private: PrivateKey,
        chain: Sequence[x509.Certificate],
        *,
        host: str,
        now: int,
    ) -> AccessCredential:
        root = self.root()
        chain = _without_root(chain, root)
        credential = self._check_access(private, chain, root, host=host, now=now)
        _write(self.dir / ACCESS_KEY, _private_pem(private, self._passphrase), private=True)
        _write(self.dir / ACCESS_CHAIN, _pem(chain))
        return credential

    def _check_access(
        self,
        private: PrivateKey,
        chain: Sequence[x509.Certificate],
        root: x509.Certificate,
        *,
        host: str,
        now: int,
    ) -> AccessCredential:
        what = "access certificate"
        if not chain:
            raise CertificateError(f"{what}: the chain is empty")
        if not _same_key(chain[0], private):
            raise CertificateError(f"{what}: the leaf certifies another key")
        validated = _validated(chain, root, now=now, what=what)
        if host.lower() not in validated.san_dns:
            raise CertificateError(f"{what}: the leaf's SAN DNS must include {host}")
        key = SigningKey(
            kid=jwk_thumbprint(public_jwk(private)),
            alg=algorithm_for(private),
            key=private,
            x5c=tuple(chain_to_x5c(chain)),  # every Request Object carries it
        )
        return AccessCredential(key=key, chain=tuple(chain), root=root)

    # --- the running server ---------------------------------------------------------------

    def chain_loader(self, *, issuer_url: str, clock: Callable[[], float]) -> ChainLoader:
        """What the key ring calls for each published key: its validated ``x5c``."""

        def load(key: SigningKey) -> tuple[str, ...]:
            try:
                chain = self.load_issuer_chain(key, issuer_url=issuer_url, now=int(clock()))
            except CertificateError as exc:
                raise KeyRingError(str(exc)) from exc
            return tuple(chain_to_x5c(chain)) if chain else ()

        return load

    def provision(self, ring: KeyRing, *, issuer_url: str, now: int) -> list[str]:
        """Make what a development server needs and lacks: a root (only when there is no
        root at all), a certificate per published key, the access certificate. A folder
        with an imported root (no root key) is left to its operator. Returns what it made."""
        made: list[str] = []
        if not self.exists:
            self.init(common_name=f"Thiqa development root ({access_host(issuer_url)})", now=now)
            made.append("root")
        if not self.can_issue:
            return made
        for key in ring.keys.values():
            if not self.issuer_path(key.kid).exists():
                self.certify_issuer_key(key, issuer_url=issuer_url, now=now)
                made.append(f"issuer:{key.kid}")
        if not self.has_access:
            self.issue_access(host=access_host(issuer_url), now=now)
            made.append("access")
        return made

    @property
    def has_access(self) -> bool:
        return (self.dir / ACCESS_CHAIN).exists()

    def load_access(self, *, host: str, now: int) -> AccessCredential:
        private = _read_private(self.dir / ACCESS_KEY, self._passphrase)
        return self._check_access(
            private, _read_chain(self.dir / ACCESS_CHAIN), self.root(), host=host, now=now
        )


def access_host(url: str) -> str:
    """The host an access certificate names: the host of the public URL."""
    host = urlsplit(url).hostname
    if not host:
        raise CertificateError(f"{url} has no host for the access certificate")
    return host


def read_certificates(path: Path) -> tuple[x509.Certificate, ...]:
    """Certificates from an operator's PEM file, with a clear error."""
    return _read_chain(path)


def read_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    return _read_private(path, passphrase)
