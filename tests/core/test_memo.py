"""Memo: what verification remembers never changes a verdict."""

from __future__ import annotations

from typing import Any

import pytest

from service.core import holder
from service.core.credential import StatusReference, issue
from service.core.encoding import b64url_decode, b64url_encode
from service.core.keys import generate_signing_key, public_jwk
from service.core.memo import Memo
from service.core.reasons import Reason
from service.core.verify import Expectations, Policy, TrustedIssuer, inspect

ISS = "https://issuer.example"
VCT = f"{ISS}/types/national-id"
NOW = 2_000_000_000
CLAIMS = {"given_name": "Amina", "family_name": "El Idrissi", "address": {"locality": "Fès"}}


def _credential(issuer: Any, wallet: Any, idx: int) -> str:
    return issue(
        CLAIMS,
        issuer=ISS,
        vct=VCT,
        key=issuer,
        status=StatusReference(uri=f"{ISS}/status-lists/abcdefabcdef", idx=idx),
        issued_at=NOW - 10,
        expires_at=NOW + 3600,
        holder_jwk=public_jwk(wallet.key),
    )


@pytest.fixture(scope="module")
def material() -> dict[str, Any]:
    issuer, other, wallet = (generate_signing_key() for _ in range(3))
    credential = _credential(issuer, wallet, 3)
    presentation = holder.present(
        credential, list(CLAIMS), holder_key=wallet, nonce="n", audience="a", now=NOW
    )
    return {"issuer": issuer, "other": other, "presentation": presentation}


def _trusted(key: Any, *, kid: str, revoked: frozenset[str] = frozenset()) -> dict[str, Any]:
    verification = key.verification_key()
    return {
        ISS: TrustedIssuer(
            identifier=ISS,
            keys={kid: type(verification)(kid=kid, alg=verification.alg, key=verification.key)},
            types=frozenset({VCT}),
            revoked_kids=revoked,
        )
    }


def _codes(presentation: str, trusted: dict[str, Any], memo: Memo | None) -> list[Reason]:
    inspection = inspect(
        presentation,
        trusted=trusted,
        policy=Policy(),
        expect=Expectations(nonce="n", audience="a"),
        now=NOW,
        memo=memo,
    )
    return [f.reason for f in inspection.failures]


def _variants(presentation: str) -> list[str]:
    jwt, *disclosures, kb = presentation.split("~")
    header, payload, signature = jwt.split(".")
    flipped = bytearray(b64url_decode(signature))
    flipped[5] ^= 1
    return [
        presentation,
        "~".join([jwt, *disclosures, disclosures[0], kb]),  # a disclosure sent twice
        "~".join([jwt, *disclosures[1:], kb]),  # one left out: the KB-JWT's sd_hash breaks
        "~".join([f"{header}.{payload}.{b64url_encode(bytes(flipped))}", *disclosures, kb]),
        "~".join([jwt, *disclosures, ""]),  # no KB-JWT although a nonce is expected
    ]


def test_verdicts_with_a_warm_memo_are_those_without_one(material: dict[str, Any]) -> None:
    trusted = _trusted(material["issuer"], kid=material["issuer"].kid)
    memo = Memo()
    assert _codes(material["presentation"], trusted, memo) == []
    for variant in _variants(material["presentation"]) * 2:
        assert _codes(variant, trusted, memo) == _codes(variant, trusted, None)
    # The repeated disclosure is still caught (and breaks the KB-JWT's sd_hash too).
    assert _codes(_variants(material["presentation"])[1], trusted, memo) == [
        Reason.INVALID_DISCLOSURE,
        Reason.INVALID_KEY_BINDING,
    ]


def test_a_remembered_signature_never_vouches_for_another_key(material: dict[str, Any]) -> None:
    memo = Memo()
    kid = material["issuer"].kid
    genuine = _trusted(material["issuer"], kid=kid)
    assert _codes(material["presentation"], genuine, memo) == []
    # The same kid now names another key (a replaced trust list): the signature is checked
    # again, under that key, and fails.
    impostor = _trusted(material["other"], kid=kid)
    assert _codes(material["presentation"], impostor, memo) == [Reason.INVALID_SIGNATURE]
    # A key revoked as compromised is refused before any signature, remembered or not.
    revoked = _trusted(material["issuer"], kid=kid, revoked=frozenset({kid}))
    assert _codes(material["presentation"], revoked, memo) == [Reason.KEY_REVOKED]


def test_a_failed_check_is_never_remembered() -> None:
    memo, calls = Memo(), []

    def failing() -> bool:
        calls.append(1)
        return False

    for _ in range(3):
        assert memo.signature_holds(b"k", b"input", b"sig", failing) is False
    assert len(calls) == 3
    assert memo.signature_holds(b"k", b"input", b"sig", lambda: True) is True
    assert memo.signature_holds(b"k", b"input", b"sig", failing) is True
    assert memo.signature_holds(b"other key", b"input", b"sig", failing) is False


def test_the_memo_is_bounded() -> None:
    memo = Memo(entries=8)
    for n in range(100):
        memo.signature_holds(b"k", n.to_bytes(2, "big"), b"s", lambda: True)
    assert len(memo._signatures) == 8


def _claims(presentation: str, trusted: dict[str, Any], memo: Memo | None) -> dict[str, Any]:
    inspection = inspect(
        presentation,
        trusted=trusted,
        policy=Policy(),
        expect=Expectations(nonce="n", audience="a"),
        now=NOW,
        memo=memo,
    )
    assert inspection.failures == ()
    assert inspection.claims is not None
    return dict(inspection.claims)


def test_remembered_claims_are_those_of_the_exact_disclosures(material: dict[str, Any]) -> None:
    """The same credential presented with all its claims, then with one: the second verdict
    carries that one claim only, never what the first presentation disclosed."""
    issuer, wallet = material["issuer"], generate_signing_key()
    credential = _credential(issuer, wallet, 4)
    trusted = _trusted(issuer, kid=issuer.kid)
    memo = Memo()
    everything = holder.present(
        credential, list(CLAIMS), holder_key=wallet, nonce="n", audience="a", now=NOW
    )
    one = holder.present(
        credential, ["given_name"], holder_key=wallet, nonce="n", audience="a", now=NOW
    )
    for _ in range(2):
        full = _claims(everything, trusted, memo)
        assert {k: full[k] for k in CLAIMS} == CLAIMS
        minimal = _claims(one, trusted, memo)
        assert minimal["given_name"] == "Amina"
        assert "family_name" not in minimal
        assert "address" not in minimal
        assert minimal == _claims(one, trusted, None)
    assert len(memo.resolutions) == 2
    assert len(memo.tokens) == 1  # one credential, parsed once


def test_remembered_keeps_no_failure() -> None:
    memo, calls = Memo(), []

    def failing() -> object:
        calls.append(1)
        raise ValueError("refused")

    for _ in range(2):
        with pytest.raises(ValueError, match="refused"):
            Memo.remembered(memo.tokens, ("token", frozenset({"typ"})), failing)
    assert len(calls) == 2
    assert len(memo.tokens) == 0
    kept = object()
    assert Memo.remembered(memo.tokens, ("token", frozenset({"typ"})), lambda: kept) is kept
    assert Memo.remembered(memo.tokens, ("token", frozenset({"typ"})), failing) is kept
    # The allowed typ values are part of the key: a policy allowing others parses again.
    with pytest.raises(ValueError, match="refused"):
        Memo.remembered(memo.tokens, ("token", frozenset({"other"})), failing)


def test_parsed_tokens_and_claims_are_bounded() -> None:
    memo = Memo(parsed_entries=4)
    for n in range(50):
        Memo.remembered(memo.tokens, (str(n), frozenset()), object)
        Memo.remembered(memo.resolutions, (str(n), ()), object)
    assert (len(memo.tokens), len(memo.resolutions)) == (4, 4)
