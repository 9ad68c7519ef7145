"""Every request example in /openapi.json, run against a live Thiqa as Swagger UI's "Try it
out" sends it: each gets the status its description promises. Verification examples name a
credential to paste in; this test makes exactly that credential first (issued, or presented
with a KB-JWT for the example's own nonce and audience)."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.openapi_examples import (
    CITIZEN,
    EXAMPLES,
    FRESH_CREDENTIAL,
    FRESH_PRESENTATION,
    NATIONAL_ID_CLAIMS_SCHEMA,
    WALLET_WRITTEN,
)
from service.core import holder
from service.core.claims import _REQUIRED_NATIONAL_ID
from service.core.keys import generate_signing_key, public_jwk

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec(anonymous: httpx.Client) -> dict[str, Any]:
    return anonymous.get("/openapi.json").json()


def _documented(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"]


def _fresh(http: httpx.Client, value: dict[str, Any]) -> dict[str, Any]:
    """The example's body with its placeholder replaced by what it says to paste."""
    body = copy.deepcopy(value)
    if "presentations" in body:
        return {"presentations": [_fresh(http, item) for item in body["presentations"]]}
    if body.get("credential") == FRESH_CREDENTIAL:
        issued = http.post("/v1/credentials", json={"claims": CITIZEN})
        assert issued.status_code == 201, issued.text
        body["credential"] = issued.json()["credential"]
    elif body.get("credential") == FRESH_PRESENTATION:
        key = generate_signing_key("ES256")
        issued = http.post(
            "/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public_jwk(key.key)}
        )
        assert issued.status_code == 201, issued.text
        body["credential"] = holder.present(
            issued.json()["credential"],
            ["given_name", "family_name"],
            holder_key=key,
            nonce=body["nonce"],
            audience=body["audience"],
            now=int(time.time()),
        )
    return body


def test_every_api_body_has_examples_that_are_documented(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if (
                path.startswith("/v1/")
                and "application/json" in content
                and (method, path) not in WALLET_WRITTEN
            ):
                assert (method, path) in EXAMPLES, f"{method} {path} has no example"
    for (method, path), examples in EXAMPLES.items():
        documented = _documented(spec, method, path)
        assert set(documented) == set(examples)
        for name, example in examples.items():
            assert documented[name]["value"] == example["value"]
            assert str(example["x-status"]) in documented[name]["description"]
            assert "x-status" not in documented[name]


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [(m, p, n) for (m, p), examples in EXAMPLES.items() for n in examples],
)
def test_each_example_succeeds_as_documented(
    http: httpx.Client, spec: dict[str, Any], method: str, path: str, name: str
) -> None:
    example = _documented(spec, method, path)[name]
    answer = http.request(method, path, json=_fresh(http, example["value"]))
    assert answer.status_code == EXAMPLES[(method, path)][name]["x-status"], answer.text
    if path == "/v1/verify/batch":
        verdicts = answer.json()["verdicts"]
        assert len(verdicts) == 2
        assert [v["valid"] for v in verdicts] == [True, True]
    if path == "/v1/verify":
        verdict = answer.json()
        assert verdict["valid"] is True, verdict["errors"]
        assert verdict["errors"] == []
        assert verdict["key_bound"] is (name == "presentation")
        if name == "presentation":
            assert set(verdict["claims"]) == {"given_name", "family_name"}


def test_the_examples_citizen_is_the_first_seed() -> None:
    seeds = json.loads((ROOT / "seeds" / "citizens.json").read_text(encoding="utf-8"))
    assert seeds["citizens"][0] == CITIZEN


def test_the_claims_schema_says_what_the_national_id_requires(spec: dict[str, Any]) -> None:
    metadata = json.loads(
        (ROOT / "service" / "metadata" / "national-id.json").read_text(encoding="utf-8")
    )
    paths = {tuple(claim["path"]) for claim in metadata["claims"]}
    documented = set()
    for name, schema in NATIONAL_ID_CLAIMS_SCHEMA["properties"].items():
        documented.add((name,))
        documented |= {(name, child) for child in schema.get("properties", {})}
    assert documented == paths  # every claim of the type, and no other
    assert tuple(NATIONAL_ID_CLAIMS_SCHEMA["required"]) == _REQUIRED_NATIONAL_ID
    for model in ("IssueRequest", "OfferRequest"):
        claims = spec["components"]["schemas"][model]["properties"]["claims"]
        assert claims["required"] == ["given_name", "family_name", "birthdate", "national_id"]
        assert claims["properties"]["birthdate"]["format"] == "date"
        assert "given_name#ar" in claims["description"]
