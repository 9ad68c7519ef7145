"""Thiqa's credentials and status-list tokens carry the signing key's chain in ``x5c`` beside
``kid`` (HAIP 1.0), and that chain validates to Thiqa's root; a verifier that trusts Thiqa
only through that root (no JWKS) accepts them, and the trust list takes such anchors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from service.core import jws
from service.core.status_token import STATUS_LIST_TYP, read_status_list
from service.core.verify import Expectations, Policy, conclude, inspect
from service.core.x509 import chain_to_x5c, parse_x5c, validate_chain
from service.keyring.certificates import Pki
from service.keyring.trust_list import TrustListError, load_trust_list
from service.settings import Settings


def _issue(http: httpx.Client, claims: dict) -> dict:
    response = http.post("/v1/credentials", json={"claims": claims})
    assert response.status_code == 201, response.text
    return response.json()


def test_credential_and_status_list_carry_x5c_beside_kid(
    http: httpx.Client, settings: Settings, citizen: dict
) -> None:
    issued = _issue(http, citizen)
    header, *_ = jws.decode_compact(issued["credential"].split("~")[0])
    assert header["kid"]
    chain = parse_x5c(header["x5c"])
    root = Pki(settings.keys_dir).root()
    assert root not in chain  # leaf first, never the root
    validated = validate_chain(chain, anchors=[root], now=int(time.time()))
    assert validated.san_uris == {settings.issuer_url}

    uri = issued["status"]["status_list"]["uri"]
    listed = http.get(uri, headers={"Accept": f"application/{STATUS_LIST_TYP}"})
    assert listed.status_code == 200
    list_header, *_ = jws.decode_compact(listed.text)
    assert list_header["x5c"] == header["x5c"]
    # Verified by the chain alone: no key by kid is offered.
    token = read_status_list(listed.text, keys={}, anchors=[root], uri=uri, now=int(time.time()))
    assert token.bits == 2


def test_verifier_trusting_only_the_root_accepts_the_credential(
    http: httpx.Client, settings: Settings, tmp_path: Path, citizen: dict
) -> None:
    issued = _issue(http, citizen)
    root = Pki(settings.keys_dir).root()
    (tmp_path / "root.pem").write_text(
        "".join(
            f"-----BEGIN CERTIFICATE-----\n{b}\n-----END CERTIFICATE-----\n"
            for b in chain_to_x5c([root])
        )
    )
    (tmp_path / "trust.yaml").write_text(
        f"issuers:\n  - issuer: {settings.issuer_url}\n"
        f"    credential_types: [{settings.national_id_vct}]\n"
        "    x509_roots: [root.pem]\n"
    )
    trusted = load_trust_list(tmp_path / "trust.yaml")
    assert trusted[settings.issuer_url].keys == {}
    inspection = inspect(
        issued["credential"],
        trusted=trusted,
        policy=Policy(),
        expect=Expectations(),
        now=int(time.time()),
    )
    verdict = conclude(inspection, 0)
    assert verdict.valid, verdict.failures
    assert verdict.claims == citizen


@pytest.mark.parametrize(
    ("roots", "message"),
    [
        ("[missing.pem]", "cannot read"),
        ("['not a pem']", "cannot read"),
        ("[]", "non-empty list"),
        ("{urn:unknown: [root.pem]}", "names types not in credential_types"),
    ],
)
def test_bad_x509_roots_stop_the_trust_list(tmp_path: Path, roots: str, message: str) -> None:
    (tmp_path / "trust.yaml").write_text(
        "issuers:\n  - issuer: https://id.example\n    credential_types: [urn:t]\n"
        f"    x509_roots: {roots}\n"
    )
    with pytest.raises(TrustListError, match=message):
        load_trust_list(tmp_path / "trust.yaml")


def test_entry_without_jwks_or_roots_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trust.yaml").write_text(
        "issuers:\n  - issuer: https://id.example\n    credential_types: [urn:t]\n"
    )
    with pytest.raises(TrustListError, match="needs 'jwks', 'x509_roots' or both"):
        load_trust_list(tmp_path / "trust.yaml")
