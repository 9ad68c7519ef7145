"""The issue's end-to-end check for mdocs, through the `thiqa wallet` command: an mso_mdoc
offer accepted, listed and shown, presented to an OpenID4VP request (the default one: signed,
``x509_hash``, answered encrypted by ``direct_post.jwt``), verified with exactly the requested
elements, revoked, and the next presentation refused as revoked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.server import BackgroundServer
from service.core.mdoc import national_id
from service.settings import Settings
from tests.cli.test_wallet_cli import thiqa

NS = national_id.NAMESPACE


@pytest.fixture
def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {**base, "COLUMNS": "220", "PYTHONIOENCODING": "utf-8"}


@pytest.fixture
def citizen() -> dict[str, Any]:
    return {
        "given_name": "Amina",
        "given_name#ar": "أمينة",
        "family_name": "El Idrissi",
        "family_name#ar": "الإدريسي",
        "birthdate": "1990-04-12",
        "national_id": "ZZ104233",
        "nationality": "MA",
    }


def _request(http: httpx.Client) -> dict[str, Any]:
    response = http.post(
        "/v1/presentation-requests",
        json={
            "claims": [[NS, "given_name_national_character"], [NS, "birth_date"]],
            "purpose": "Ouverture d'un compte",
            "format": "mso_mdoc",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_mdoc_offer_wallet_present_verify_revoke(
    server: BackgroundServer,
    http: httpx.Client,
    citizen: dict[str, Any],
    env: dict[str, str],
    tmp_path: Path,
    settings: Settings,
) -> None:
    offer = http.post("/v1/credential-offers", json={"claims": citizen, "format": "mso_mdoc"})
    assert offer.status_code == 201, offer.text
    offer_body = offer.json()
    assert offer_body["credential_offer"]["credential_configuration_ids"] == [
        "thiqa_national_id_mdoc"
    ]
    wallet = str(tmp_path / "wallet.json")
    accepted = thiqa(
        [
            "wallet",
            "accept",
            offer_body["offer_uri"],
            "--pin",
            offer_body["tx_code"],
            "--wallet",
            wallet,
        ],
        env,
        tmp_path,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "Amina El Idrissi" in accepted.stdout
    assert "أمينة الإدريسي" in accepted.stdout
    stored = json.loads(Path(wallet).read_text("utf-8"))["credentials"]
    assert [(c["format"], c["vct"], c["issuer"]) for c in stored] == [
        ("mso_mdoc", national_id.DOCTYPE, server.url)
    ]
    credential_id = stored[0]["id"]

    listed = thiqa(["wallet", "list", "--wallet", wallet], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert credential_id in listed.stdout
    assert national_id.DOCTYPE in listed.stdout
    shown = thiqa(["wallet", "show", credential_id, "--wallet", wallet], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    for text in ("given_name_national_character", "Given name (Arabic)", "أمينة", "1990-04-12"):
        assert text in shown.stdout, text
    status = thiqa(["wallet", "status", credential_id, "--wallet", wallet], env, tmp_path)
    assert status.stdout.strip() == f"{credential_id}: valid", status.stderr

    # The relying party's root, as a tester adds it: the request is signed (x509_hash).
    root = str(settings.keys_dir / "pki" / "root.pem")
    trusted = thiqa(["wallet", "trust", "add", root, "--wallet", wallet], env, tmp_path)
    assert trusted.returncode == 0, trusted.stderr

    request = _request(http)
    assert request["client_id"].startswith("x509_hash:")
    presented = thiqa(
        ["wallet", "present", request["wallet_uri"], "--wallet", wallet], env, tmp_path
    )
    assert presented.returncode == 0, presented.stderr
    assert "Accepted" in presented.stdout
    result = http.get(f"/v1/presentation-requests/{request['request_id']}").json()
    assert result["state"] == "completed"
    assert result["verdict"]["claims"] == {
        NS: {"given_name_national_character": "أمينة", "birth_date": "1990-04-12"}
    }

    info = http.get(f"/v1/credential-offers/{offer_body['offer_id']}").json()
    assert http.post(f"/v1/credentials/{info['credential_id']}/revoke").status_code == 200
    again = _request(http)
    refused = thiqa(["wallet", "present", again["wallet_uri"], "--wallet", wallet], env, tmp_path)
    assert refused.returncode == 1
    assert "revoked" in refused.stderr
    result = http.get(f"/v1/presentation-requests/{again['request_id']}").json()
    assert result["state"] == "failed"
    assert [e["code"] for e in result["verdict"]["errors"]] == ["revoked"]
    assert result["verdict"]["claims"] is None
