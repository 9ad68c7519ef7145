"""The operator's certificates on disk (service/keyring/certificates.py): made, imported,
validated on write and on load, renewed with the key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.core import jws
from service.core.keys import generate_signing_key
from service.core.x509 import parse_x5c, validate_chain
from service.keyring.certificates import (
    ISSUER_SIGNING,
    CertificateError,
    Pki,
    issue_certificate,
    make_root,
)
from service.keyring.keyring import KeyRingError, load_or_create
from service.keyring.rotation import rotate

ISSUER = "https://id.example.ma"
NOW = int(time.time())
YEAR = 365 * 86_400


def _provisioned(tmp_path: Path, passphrase: bytes | None = None) -> tuple[Pki, object]:
    ring = load_or_create(tmp_path, passphrase=passphrase)
    pki = Pki(tmp_path, passphrase=passphrase)
    made = pki.provision(ring, issuer_url=ISSUER, now=NOW)
    assert made == ["root", f"issuer:{ring.active.kid}", "access"]
    return pki, ring


def test_provision_makes_root_signing_and_access_certificates(tmp_path: Path) -> None:
    pki, ring = _provisioned(tmp_path, passphrase=b"secret")
    for private in ("root.key.pem", "access.key.pem"):
        path = pki.dir / private
        assert path.stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED" in path.read_bytes()
    chain = pki.load_issuer_chain(ring.active, issuer_url=ISSUER, now=NOW)  # type: ignore[attr-defined]
    assert chain is not None
    assert len(chain) == 1  # leaf only: the root is never sent
    validated = validate_chain(chain, anchors=[pki.root()], now=NOW)
    assert validated.san_uris == {ISSUER}
    access = pki.load_access(host="id.example.ma", now=NOW)
    assert access.chain[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == ["id.example.ma"]
    # A second start makes nothing new.
    assert pki.provision(ring, issuer_url=ISSUER, now=NOW) == []  # type: ignore[arg-type]


def test_ring_keys_carry_x5c_and_sign_with_it(tmp_path: Path) -> None:
    pki, _ = _provisioned(tmp_path)
    ring = load_or_create(tmp_path, chains=pki.chain_loader(issuer_url=ISSUER, clock=time.time))
    token = jws.encode({"iss": ISSUER}, ring.active, typ="dc+sd-jwt")
    header, *_ = jws.decode_compact(token)
    assert header["kid"] == ring.active.kid
    (leaf,) = parse_x5c(header["x5c"])
    assert leaf.public_key().public_numbers() == ring.active.key.public_key().public_numbers()


def test_expired_certificate_stops_the_load_with_a_clear_error(tmp_path: Path) -> None:
    pki, _ = _provisioned(tmp_path)
    later = pki.chain_loader(issuer_url=ISSUER, clock=lambda: NOW + 3 * YEAR)
    with pytest.raises(KeyRingError, match="expired"):
        load_or_create(tmp_path, chains=later)


def test_certificate_for_another_issuer_url_is_refused_on_load(tmp_path: Path) -> None:
    pki, _ = _provisioned(tmp_path)
    other = pki.chain_loader(issuer_url="https://other.example", clock=time.time)
    with pytest.raises(KeyRingError, match="SAN URI must be the issuer URL"):
        load_or_create(tmp_path, chains=other)


def test_import_refuses_a_leaf_for_another_key(tmp_path: Path) -> None:
    pki, ring = _provisioned(tmp_path)
    stranger = generate_signing_key()
    leaf = issue_certificate(
        ISSUER_SIGNING,
        subject=x509.Name([]),
        public_key=stranger.key.public_key(),  # type: ignore[arg-type]
        issuer_certificate=pki.root(),
        issuer_key=pki._root_key(),
        now=NOW,
        san=[x509.UniformResourceIdentifier(ISSUER)],
    )
    before = pki.issuer_path(ring.active.kid).read_bytes()  # type: ignore[attr-defined]
    with pytest.raises(CertificateError, match="certifies another key"):
        pki.import_issuer_chain(ring.active, [leaf], issuer_url=ISSUER, now=NOW)  # type: ignore[attr-defined]
    assert pki.issuer_path(ring.active.kid).read_bytes() == before  # type: ignore[attr-defined]


def test_import_from_a_national_pki_validates_against_its_root(tmp_path: Path) -> None:
    ring = load_or_create(tmp_path)
    pki = Pki(tmp_path)
    national, national_key = make_root("National root", now=NOW - 86_400)
    leaf = issue_certificate(
        ISSUER_SIGNING,
        subject=x509.Name([]),
        public_key=ring.active.key.public_key(),  # type: ignore[arg-type]
        issuer_certificate=national,
        issuer_key=national_key,
        now=NOW,
        san=[x509.UniformResourceIdentifier(ISSUER)],
    )
    pki.set_root(national)
    assert not pki.can_issue
    pki.import_issuer_chain(ring.active, [leaf, national], issuer_url=ISSUER, now=NOW)
    assert pki.load_issuer_chain(ring.active, issuer_url=ISSUER, now=NOW) == (leaf,)
    # A chain from another root is refused, with the verdict code in the message.
    foreign, foreign_key = make_root("Foreign", now=NOW - 86_400)
    bad = issue_certificate(
        ISSUER_SIGNING,
        subject=x509.Name([]),
        public_key=ring.active.key.public_key(),  # type: ignore[arg-type]
        issuer_certificate=foreign,
        issuer_key=foreign_key,
        now=NOW,
        san=[x509.UniformResourceIdentifier(ISSUER)],
    )
    with pytest.raises(CertificateError, match="untrusted_certificate"):
        pki.import_issuer_chain(ring.active, [bad], issuer_url=ISSUER, now=NOW)


def test_access_import_needs_the_public_host(tmp_path: Path) -> None:
    pki, _ = _provisioned(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_certificate(
        ISSUER_SIGNING,
        subject=x509.Name([]),
        public_key=key.public_key(),
        issuer_certificate=pki.root(),
        issuer_key=pki._root_key(),
        now=NOW,
        san=[x509.DNSName("elsewhere.example")],
    )
    with pytest.raises(CertificateError, match=r"SAN DNS must include id\.example\.ma"):
        pki.import_access(key, [leaf], host="id.example.ma", now=NOW)


def test_rotation_certifies_the_new_key_before_publishing_it(tmp_path: Path) -> None:
    pki, _ = _provisioned(tmp_path)
    entry = rotate(
        tmp_path,
        alg="ES256",
        passphrase=None,
        publish_seconds=0,
        certify=lambda key: pki.certify_issuer_key(key, issuer_url=ISSUER, now=NOW),
    )
    ring = load_or_create(tmp_path, chains=pki.chain_loader(issuer_url=ISSUER, clock=time.time))
    assert ring.active.kid == entry.kid
    assert ring.active.x5c
    assert all(key.x5c for key in ring.keys.values())


def test_init_refuses_to_replace_a_root(tmp_path: Path) -> None:
    pki, _ = _provisioned(tmp_path)
    before = (pki.dir / "root.pem").read_bytes()
    with pytest.raises(CertificateError, match="exists"):
        pki.init(common_name="again", now=NOW)
    assert (pki.dir / "root.pem").read_bytes() == before
