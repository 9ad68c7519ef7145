"""The holder's side: choosing disclosures and binding a presentation with a KB-JWT."""

from __future__ import annotations

import pytest

from service.core import holder, jws
from service.core.credential import KB_TYP
from service.core.sdjwt import digest, disclose, split
from service.core.status_list import StatusValue
from service.core.verify import conclude

from .helpers import (
    AUDIENCE,
    CLAIMS,
    HOLDER_KEY,
    NONCE,
    NOW,
    bound_expectations,
    issue,
    run,
)

CRED = issue()


def disclosed_paths(presentation: str) -> set[tuple[str | int, ...]]:
    parts = split(presentation)
    payload = jws.parse(parts.issuer_jwt, typ=frozenset({"dc+sd-jwt"})).payload
    return set(disclose(payload, parts.disclosures).paths.values())


def verified_claims(presentation: str) -> dict[str, object]:
    inspection = run(presentation)
    assert inspection.failures == ()
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.valid
    assert verdict.claims is not None
    return verdict.claims


def test_disclosable_paths_lists_every_claim_and_nested_member() -> None:
    paths = holder.disclosable_paths(CRED)
    assert sorted(paths, key=str) == sorted(
        [
            ("given_name",),
            ("family_name",),
            ("given_name#ar",),
            ("birthdate",),
            ("national_id",),
            ("address",),
            ("address", "locality"),
            ("address", "country"),
            ("nationalities",),
            ("nationalities", 0),
            ("nationalities", 1),
        ],
        key=str,
    )
    assert len(paths) == len(split(CRED).disclosures)


def test_presents_only_the_chosen_top_level_claims() -> None:
    presentation = holder.present(CRED, ["given_name", "birthdate"])
    assert presentation.endswith("~")
    assert len(split(presentation).disclosures) == 2
    assert verified_claims(presentation) == {"given_name": "Amina", "birthdate": "1990-04-12"}


def test_presenting_nothing_keeps_only_the_issuer_jwt() -> None:
    presentation = holder.present(CRED, [])
    assert presentation == split(CRED).issuer_jwt + "~"
    assert verified_claims(presentation) == {}


def test_presenting_a_nested_claim_includes_its_parent_disclosure() -> None:
    presentation = holder.present(CRED, [("address", "locality")])
    assert disclosed_paths(presentation) == {("address",), ("address", "locality")}
    assert verified_claims(presentation) == {"address": {"locality": "Rabat"}}


def test_presenting_the_parent_includes_its_children() -> None:
    presentation = holder.present(CRED, ["address"])
    assert disclosed_paths(presentation) == {
        ("address",),
        ("address", "locality"),
        ("address", "country"),
    }
    assert verified_claims(presentation) == {"address": CLAIMS["address"]}


def test_presenting_one_array_element() -> None:
    presentation = holder.present(CRED, [("nationalities", 1)])
    # Paths are positions in the disclosed result: the one element shown becomes index 0.
    assert disclosed_paths(presentation) == {("nationalities",), ("nationalities", 0)}
    assert len(split(presentation).disclosures) == 2
    assert verified_claims(presentation) == {"nationalities": ["FR"]}


def test_presenting_everything_gives_every_claim() -> None:
    presentation = holder.present(CRED, list(CLAIMS))
    assert split(presentation).disclosures == split(CRED).disclosures
    assert verified_claims(presentation) == CLAIMS


def test_unknown_claim_names_disclose_nothing() -> None:
    assert holder.present(CRED, ["no_such_claim"]) == split(CRED).issuer_jwt + "~"


def test_keeps_the_issuance_order_of_disclosures() -> None:
    presentation = holder.present(CRED, ["nationalities", "given_name"])
    original = split(CRED).disclosures
    kept = split(presentation).disclosures
    assert list(kept) == [d for d in original if d in kept]


def test_key_binding_jwt_signs_the_exact_presentation() -> None:
    presentation = holder.present(
        CRED, ["given_name"], holder_key=HOLDER_KEY, nonce=NONCE, audience=AUDIENCE, now=NOW
    )
    parts = split(presentation)
    assert parts.kb_jwt is not None
    kb = jws.parse(parts.kb_jwt, typ=frozenset({KB_TYP}))
    assert dict(kb.header) == {"alg": "ES256", "typ": "kb+jwt"}  # no kid: the key is in cnf
    assert dict(kb.payload) == {
        "iat": NOW,
        "aud": AUDIENCE,
        "nonce": NONCE,
        "sd_hash": digest(parts.hashed_part),
    }
    # sd_hash covers the issuer JWT and the chosen disclosures, each with its tilde.
    assert parts.hashed_part == presentation[: presentation.rindex("~") + 1]
    assert parts.hashed_part == holder.present(CRED, ["given_name"])
    HOLDER_KEY.verification_key().verify(kb.signature, kb.signing_input)


def test_bound_presentation_verifies_with_key_binding() -> None:
    presentation = holder.present(
        CRED, ["family_name"], holder_key=HOLDER_KEY, nonce=NONCE, audience=AUDIENCE, now=NOW
    )
    inspection = run(presentation, expect=bound_expectations())
    assert inspection.failures == ()
    assert inspection.key_bound
    assert inspection.claims == {"family_name": "Benali"}


@pytest.mark.parametrize("missing", [{"nonce": None}, {"audience": None}, {"now": None}])
def test_key_binding_needs_nonce_audience_and_time(missing: dict[str, None]) -> None:
    args: dict[str, object] = {"nonce": NONCE, "audience": AUDIENCE, "now": NOW, **missing}
    with pytest.raises(ValueError, match="key binding"):
        # Deliberately a None where the signature wants a value: what a caller's bug sends.
        holder.present(CRED, ["given_name"], holder_key=HOLDER_KEY, **args)  # type: ignore[arg-type]


def test_presenting_again_from_a_bound_presentation_drops_its_kb_jwt() -> None:
    # A KB-JWT is the last component; presenting again from it must not treat it as a
    # disclosure. The holder presents from the issued credential.
    bound = holder.present(
        CRED, ["given_name"], holder_key=HOLDER_KEY, nonce=NONCE, audience=AUDIENCE, now=NOW
    )
    assert split(bound).kb_jwt is not None
    assert holder.present(bound, ["given_name"]) == holder.present(CRED, ["given_name"])
