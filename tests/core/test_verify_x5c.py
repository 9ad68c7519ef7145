"""Credentials signed under X.509 (HAIP 1.0): ``x5c`` trusted only through an anchor of the
issuer and type, the signature by the leaf's key, ``iss`` named by the leaf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.core import credential
from service.core.keys import SigningKey, generate_signing_key
from service.core.reasons import Reason
from service.core.status_list import StatusValue
from service.core.verify import Expectations, Policy, TrustedIssuer, conclude, inspect
from service.core.x509 import chain_to_x5c
from service.keyring.certificates import ISSUER_SIGNING, issue_certificate, make_root
from tests.core.helpers import CLAIMS, ISSUER, NOW, STATUS, VCT

DAY = 86_400
ROOT, ROOT_KEY = make_root("Issuer root", now=NOW - DAY)
OTHER_ROOT, OTHER_ROOT_KEY = make_root("Other root", now=NOW - DAY)


def _certified(
    key: SigningKey,
    *,
    san: str = ISSUER,
    root: x509.Certificate = ROOT,
    root_key: ec.EllipticCurvePrivateKey = ROOT_KEY,
    now: int = NOW,
) -> SigningKey:
    leaf = issue_certificate(
        ISSUER_SIGNING,
        subject=x509.Name([]),
        public_key=key.key.public_key(),
        issuer_certificate=root,
        issuer_key=root_key,
        now=now,
        san=[x509.UniformResourceIdentifier(san)],
    )
    return replace(key, x5c=tuple(chain_to_x5c([leaf])))


KEY = _certified(generate_signing_key())
#: Trusted by anchor only: no JWKS at all, as the EUDI verifier trusts issuers.
TRUST = {
    ISSUER: TrustedIssuer(
        identifier=ISSUER, keys={}, types=frozenset({VCT}), anchors={VCT: (ROOT,)}
    )
}


def _issue(key: SigningKey) -> str:
    return credential.issue(
        CLAIMS,
        issuer=ISSUER,
        vct=VCT,
        key=key,
        status=STATUS,
        issued_at=NOW,
        expires_at=NOW + 30 * DAY,
    )


def _codes(
    token: str, *, trust: Mapping[str, TrustedIssuer] = TRUST, now: int = NOW
) -> list[Reason]:
    inspection = inspect(token, trusted=trust, policy=Policy(), expect=Expectations(), now=now)
    verdict = conclude(inspection, StatusValue.VALID if inspection.signature_verified else None)
    return [f.reason for f in verdict.failures]


def test_credential_under_an_anchor_verifies_with_exactly_its_claims() -> None:
    token = _issue(KEY)
    inspection = inspect(token, trusted=TRUST, policy=Policy(), expect=Expectations(), now=NOW)
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.valid
    assert verdict.claims == CLAIMS


def test_chain_to_another_root_is_untrusted() -> None:
    key = _certified(generate_signing_key(), root=OTHER_ROOT, root_key=OTHER_ROOT_KEY)
    assert _codes(_issue(key)) == [Reason.UNTRUSTED_CERTIFICATE]


def test_expired_and_early_certificates_are_told_apart() -> None:
    assert _codes(_issue(KEY), now=NOW + 3 * 365 * DAY)[0] is Reason.CERTIFICATE_EXPIRED
    assert _codes(_issue(KEY), now=NOW - 2 * DAY)[0] is Reason.CERTIFICATE_NOT_YET_VALID


def test_signature_by_another_key_than_the_leaf_fails() -> None:
    impostor = replace(generate_signing_key(), x5c=KEY.x5c)
    assert _codes(_issue(impostor)) == [Reason.INVALID_SIGNATURE]


def test_leaf_naming_another_issuer_is_a_mismatch() -> None:
    key = _certified(generate_signing_key(), san="https://someone-else.example")
    assert _codes(_issue(key)) == [Reason.CERTIFICATE_MISMATCH]


def test_type_without_an_anchor_is_untrusted() -> None:
    trust = {
        ISSUER: replace(
            TRUST[ISSUER], types=frozenset({VCT, "urn:other"}), anchors={"urn:other": (ROOT,)}
        )
    }
    assert _codes(_issue(KEY), trust=trust) == [Reason.UNTRUSTED_CERTIFICATE]


def test_x5c_of_an_issuer_without_anchors_is_never_read() -> None:
    # A JWKS-only issuer: the header's chain is ignored, and with no kid it knows, the key
    # is unknown, whatever the chain says.
    trust = {ISSUER: TrustedIssuer(identifier=ISSUER, keys={}, types=frozenset({VCT}))}
    assert _codes(_issue(KEY), trust=trust) == [Reason.UNKNOWN_KEY]


def test_x5c_that_is_not_base64_is_an_invalid_chain() -> None:
    assert _codes(_issue(replace(KEY, x5c=("%%%",)))) == [Reason.INVALID_CERTIFICATE_CHAIN]


def test_empty_x5c_header_is_an_invalid_chain() -> None:
    from tests.core.helpers import sign_raw

    header = {"alg": "ES256", "typ": "dc+sd-jwt", "x5c": []}
    token = sign_raw(header, {"iss": ISSUER, "vct": VCT, "exp": NOW + DAY}, KEY) + "~"
    assert _codes(token) == [Reason.INVALID_CERTIFICATE_CHAIN]
