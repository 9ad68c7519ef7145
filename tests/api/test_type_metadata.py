"""Type Metadata at the national ID credential's vct URL."""

from __future__ import annotations

import json
from typing import Any

import httpx

from service.settings import Settings


def test_vct_url_serves_type_metadata(
    anonymous: httpx.Client, settings: Settings, issued: dict[str, Any]
) -> None:
    from service.core.encoding import b64url_decode

    payload = json.loads(b64url_decode(issued["credential"].split(".")[1]))
    response = anonymous.get(payload["vct"])
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["vct"] == settings.national_id_vct
    assert {d["locale"] for d in metadata["display"]} == {"ar", "fr", "en"}


def test_every_claim_has_labels_in_three_languages(
    anonymous: httpx.Client, settings: Settings
) -> None:
    metadata = anonymous.get(settings.national_id_vct).json()
    paths = {tuple(claim["path"]) for claim in metadata["claims"]}
    for name in (
        "given_name",
        "given_name#ar",
        "family_name",
        "family_name#ar",
        "birthdate",
        "place_of_birth",
        "sex",
        "national_id",
        "nationality",
    ):
        assert (name,) in paths
    for claim in metadata["claims"]:
        assert claim["sd"] == "always"
        labels = {d["locale"]: d["label"] for d in claim["display"]}
        assert set(labels) == {"ar", "fr", "en"}
        assert any("\u0600" <= ch <= "\u06ff" for ch in labels["ar"])


def test_metadata_claims_match_what_the_issuer_accepts(settings: Settings) -> None:
    """Every seeded citizen's claim has a label: the document is not out of date."""
    from service.cli.demo import load_citizens
    from service.services.type_metadata import national_id_metadata

    paths = {tuple(c["path"]) for c in national_id_metadata(settings.national_id_vct)["claims"]}
    for citizen in load_citizens():
        for name, value in citizen.items():
            assert (name,) in paths
            if isinstance(value, dict):
                assert all((name, sub) in paths for sub in value)
