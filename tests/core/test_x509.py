"""X.509 chains (service/core/x509.py): each broken chain fails with the code a user must see."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.core.reasons import Reason, VerificationFailure
from service.core.x509 import (
    MAX_CERTIFICATE_SIZE,
    MAX_CHAIN_LENGTH,
    MDOC_DOCUMENT_SIGNER_EKU,
    authority_key_identifier,
    certificate_hash,
    chain_to_x5c,
    parse_x5c,
    validate_chain,
)
from service.keyring.certificates import (
    DOCUMENT_SIGNER,
    ISSUER_SIGNING,
    ROOT_CA,
    Profile,
    issue_certificate,
    make_root,
)

NOW = 1_800_000_000
DAY = 86_400
#: A CA certificate and its private key.
Root = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, **kwargs: object) -> Root:
    key = ec.generate_private_key(ec.SECP256R1())
    options = {"profile": ISSUER_SIGNING, "now": NOW, **kwargs}
    certificate = issue_certificate(
        options.pop("profile"),  # type: ignore[arg-type]
        subject=_name("leaf"),
        public_key=key.public_key(),
        issuer_certificate=ca,
        issuer_key=ca_key,
        san=[x509.UniformResourceIdentifier("https://issuer.example")],
        **options,  # type: ignore[arg-type]
    )
    return certificate, key


@pytest.fixture(scope="module")
def root() -> Root:
    return make_root("Test root", now=NOW - DAY)


def _fails(
    reason: Reason,
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: int = NOW,
    **kwargs: object,
) -> None:
    with pytest.raises(VerificationFailure) as caught:
        validate_chain(chain, anchors=anchors, now=now, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason


def test_leaf_under_root_validates_with_its_san(root: Root) -> None:
    ca, ca_key = root
    leaf, _ = _leaf(ca, ca_key)
    validated = validate_chain([leaf], anchors=[ca], now=NOW)
    assert validated.san_uris == {"https://issuer.example"}
    assert validated.anchor == ca
    assert validated.verification_key().alg == "ES256"


def test_chain_through_an_intermediate_validates(root: Root) -> None:
    ca, ca_key = root
    inter_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = issue_certificate(
        Profile("intermediate", validity_days=365, ca=True, path_length=0),
        subject=_name("intermediate"),
        public_key=inter_key.public_key(),
        issuer_certificate=ca,
        issuer_key=ca_key,
        now=NOW,
    )
    leaf, _ = _leaf(intermediate, inter_key)
    assert len(validate_chain([leaf, intermediate], anchors=[ca], now=NOW).path) == 3
    # Without the intermediate the path cannot be built: a broken chain, not an unknown root.
    _fails(Reason.UNTRUSTED_CERTIFICATE, [leaf], [ca])


def test_expired_and_not_yet_valid_are_told_apart(root: Root) -> None:
    ca, ca_key = root
    leaf, _ = _leaf(ca, ca_key)
    _fails(Reason.CERTIFICATE_EXPIRED, [leaf], [ca], now=NOW + 3 * 365 * DAY)
    _fails(Reason.CERTIFICATE_NOT_YET_VALID, [leaf], [ca], now=NOW - 2 * DAY)


def test_chain_to_an_unknown_root_is_untrusted(root: Root) -> None:
    ca, ca_key = root
    leaf, _ = _leaf(ca, ca_key)
    other, _ = make_root("Other root", now=NOW - DAY)
    _fails(Reason.UNTRUSTED_CERTIFICATE, [leaf], [other])


def test_root_copying_an_anchors_name_is_untrusted(root: Root) -> None:
    ca, _ = root
    impostor, impostor_key = make_root("Test root", now=NOW - DAY)
    leaf, _ = _leaf(impostor, impostor_key)
    _fails(Reason.UNTRUSTED_CERTIFICATE, [leaf], [ca])


def test_no_anchor_means_untrusted(root: Root) -> None:
    ca, ca_key = root
    leaf, _ = _leaf(ca, ca_key)
    _fails(Reason.UNTRUSTED_CERTIFICATE, [leaf], [])


def test_self_signed_leaf_is_refused(root: Root) -> None:
    ca, _ = root
    _fails(Reason.INVALID_CERTIFICATE_CHAIN, [ca], [ca])


def test_leaf_signed_by_a_non_ca_is_refused(root: Root) -> None:
    ca, ca_key = root
    middle, middle_key = _leaf(ca, ca_key)
    leaf, _ = _leaf(middle, middle_key)
    _fails(Reason.INVALID_CERTIFICATE_CHAIN, [leaf, middle], [ca])


def test_leaf_without_digital_signature_is_refused(root: Root) -> None:
    ca, ca_key = root
    key = ec.generate_private_key(ec.SECP256R1())
    # A CA-shaped certificate (keyCertSign only) offered as a signing leaf.
    leaf = issue_certificate(
        ROOT_CA,
        subject=_name("not a signer"),
        public_key=key.public_key(),
        issuer_certificate=ca,
        issuer_key=ca_key,
        now=NOW,
    )
    _fails(Reason.INVALID_CERTIFICATE_CHAIN, [leaf], [ca])


def test_required_extended_key_usage_is_enforced(root: Root) -> None:
    ca, ca_key = root
    plain, _ = _leaf(ca, ca_key)
    _fails(
        Reason.INVALID_CERTIFICATE_CHAIN,
        [plain],
        [ca],
        extended_key_usage=MDOC_DOCUMENT_SIGNER_EKU,
    )
    signer, _ = _leaf(ca, ca_key, profile=DOCUMENT_SIGNER)
    validate_chain([signer], anchors=[ca], now=NOW, extended_key_usage=MDOC_DOCUMENT_SIGNER_EKU)


def test_tampered_certificate_fails(root: Root) -> None:
    ca, ca_key = root
    leaf, _ = _leaf(ca, ca_key)
    x5c = chain_to_x5c([leaf])
    der = bytearray(base64.b64decode(x5c[0]))
    der[-5] ^= 0x01  # inside the signature
    _fails(Reason.INVALID_CERTIFICATE_CHAIN, parse_x5c([base64.b64encode(der).decode()]), [ca])


@pytest.mark.parametrize(
    "x5c",
    [
        None,
        [],
        "MIIB",
        [1],
        ["not base64!"],
        ["AAAA"],
        ["A" * ((MAX_CERTIFICATE_SIZE * 4) // 3 + 8)],
        ["AAAA"] * (MAX_CHAIN_LENGTH + 1),
    ],
    ids=["none", "empty", "string", "number", "alphabet", "not-der", "too-large", "too-long"],
)
def test_malformed_x5c_is_an_invalid_chain(x5c: object) -> None:
    with pytest.raises(VerificationFailure) as caught:
        parse_x5c(x5c)
    assert caught.value.reason is Reason.INVALID_CERTIFICATE_CHAIN


def test_x5c_round_trip_hash_and_aki(root: Root) -> None:
    ca, ca_key = root
    leaf, _ = _leaf(ca, ca_key)
    assert parse_x5c(chain_to_x5c([leaf])) == (leaf,)
    assert len(certificate_hash(leaf)) == 43
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert authority_key_identifier(ca) == base64.urlsafe_b64encode(
        aki.key_identifier or b""
    ).decode().rstrip("=")
