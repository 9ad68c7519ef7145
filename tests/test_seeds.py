"""The synthetic citizens in seeds/: enough of them, in both scripts, and issuable."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from service.core.claims import check_national_id_claims, normalise_claims

SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "citizens.json"
ARABIC = re.compile(r"^[\u0600-\u06FF\s]+$")


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_at_least_twenty_synthetic_citizens() -> None:
    data = json.loads(SEEDS.read_text(encoding="utf-8"))
    assert data["synthetic"] is True
    assert len(data["citizens"]) >= 20
    ids = [c["national_id"] for c in data["citizens"]]
    assert len(set(ids)) == len(ids)


def test_names_in_both_scripts_and_nfc() -> None:
    for citizen in json.loads(SEEDS.read_text(encoding="utf-8"))["citizens"]:
        for name in ("given_name#ar", "family_name#ar"):
            assert ARABIC.match(citizen[name]), name
        for name in ("given_name", "family_name"):
            assert not ARABIC.match(citizen[name])
        for text in _strings(citizen):
            assert unicodedata.normalize("NFC", text) == text
        assert citizen["nationality"] == "MA"
        assert re.fullmatch(r"[A-Z]{1,2}[0-9]{5,7}", citizen["national_id"])


def test_every_citizen_is_issuable() -> None:
    for citizen in json.loads(SEEDS.read_text(encoding="utf-8"))["citizens"]:
        checked = normalise_claims(citizen)
        check_national_id_claims(checked, today=date(2026, 11, 29))
        assert checked == citizen


def test_trust_list_example_loads() -> None:
    from service.keyring.trust_list import load_trust_list

    trusted = load_trust_list(SEEDS.parent / "trusted-issuers.example.yaml")
    assert set(trusted) == {"https://eid.example.tn", "https://credentials.example-university.ma"}
    tunisia = trusted["https://eid.example.tn"]
    assert tunisia.types == frozenset({"https://eid.example.tn/types/pid"})
    assert tunisia.status_hosts == frozenset({"status.eid.example.tn"})
    assert {key.alg for t in trusted.values() for key in t.keys.values()} == {"ES256", "EdDSA"}
