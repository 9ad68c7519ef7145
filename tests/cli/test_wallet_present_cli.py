"""``thiqa wallet present`` as a tester runs it: a real process answering a live Thiqa's
presentation request over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.core.keys import public_jwk
from service.settings import Settings
from service.wallet.store import Wallet

THIQA = [sys.executable, "-m", "service.cli"]
CITIZEN = {
    "given_name": "Amina",
    "given_name#ar": "أمينة",
    "family_name": "El Idrissi",
    "family_name#ar": "الإدريسي",
    "birthdate": "1990-04-12",
    "place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"},
    "sex": "F",
    "national_id": "ZZ104233",
    "nationality": "MA",
}


def thiqa(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    env.update({"COLUMNS": "220", "PYTHONIOENCODING": "utf-8"})
    return subprocess.run(
        [*THIQA, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


@pytest.fixture
def wallet_file(tmp_path: Path, http: httpx.Client, settings: Settings) -> Path:
    # The relying party's root, as a tester adds it: requests are signed (x509_hash).
    trusted = thiqa(
        [
            "wallet",
            "trust",
            "add",
            str(settings.keys_dir / "pki" / "root.pem"),
            "--wallet",
            str(tmp_path / "wallet.json"),
        ],
        tmp_path,
    )
    assert trusted.returncode == 0, trusted.stderr
    wallet = Wallet.open(tmp_path / "wallet.json")
    key = wallet.new_key()
    issued = http.post(
        "/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public_jwk(key.key)}
    )
    assert issued.status_code == 201, issued.text
    wallet.add(issued.json()["credential"], key)
    wallet.save()
    return wallet.path


def request(http: httpx.Client, purpose: str) -> dict[str, Any]:
    created = http.post(
        "/v1/presentation-requests",
        json={"claims": [["given_name"], ["place_of_birth", "locality"]], "purpose": purpose},
    )
    assert created.status_code == 201, created.text
    return created.json()


def test_present_answers_the_request(http: httpx.Client, wallet_file: Path, tmp_path: Path) -> None:
    created = request(http, "فتح حساب بنكي")
    done = thiqa(
        ["wallet", "present", created["wallet_uri"], "--wallet", str(wallet_file)], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "فتح حساب بنكي" in done.stdout
    assert "asks for   given_name, place_of_birth.locality" in done.stdout
    assert "Accepted" in done.stdout
    body = http.get(f"/v1/presentation-requests/{created['request_id']}").json()
    assert body["state"] == "completed"
    assert body["verdict"]["claims"] == {
        "given_name": "Amina",
        "place_of_birth": {"locality": "Fès"},
    }
    # The request is spent: a second run is told so, and exits 1.
    again = thiqa(
        ["wallet", "present", created["request_uri"], "--wallet", str(wallet_file)], tmp_path
    )
    assert again.returncode == 1
    assert "request_answered" in again.stderr


def test_present_with_the_testers_claims_is_refused(
    http: httpx.Client, wallet_file: Path, tmp_path: Path
) -> None:
    created = request(http, "Vérification")
    done = thiqa(
        [
            "wallet",
            "present",
            created["wallet_uri"],
            "--claims",
            "given_name",
            "--wallet",
            str(wallet_file),
        ],
        tmp_path,
    )
    assert done.returncode == 1
    assert "disclosing given_name" in done.stdout
    assert "presentation_rejected (missing_claims)" in done.stderr
    body = http.get(f"/v1/presentation-requests/{created['request_id']}").json()
    assert body["state"] == "failed"
    assert body["verdict"]["claims"] is None


def test_present_with_an_empty_wallet(
    http: httpx.Client, tmp_path: Path, settings: Settings
) -> None:
    created = request(http, "Vérification")
    root = str(settings.keys_dir / "pki" / "root.pem")
    trusted = thiqa(
        ["wallet", "trust", "add", root, "--wallet", str(tmp_path / "empty.json")], tmp_path
    )
    assert trusted.returncode == 0, trusted.stderr
    done = thiqa(
        ["wallet", "present", created["wallet_uri"], "--wallet", str(tmp_path / "empty.json")],
        tmp_path,
    )
    assert done.returncode == 1
    assert "no credential in the wallet matches the request" in done.stderr
    body = http.get(f"/v1/presentation-requests/{created['request_id']}").json()
    assert body["state"] == "pending"  # nothing was sent


def test_present_refuses_a_request_signed_under_an_untrusted_root(
    http: httpx.Client, tmp_path: Path, citizen_wallet_without_trust: Path
) -> None:
    created = request(http, "Open an account")
    done = thiqa(
        ["wallet", "present", created["wallet_uri"], "--wallet", str(citizen_wallet_without_trust)],
        tmp_path,
    )
    assert done.returncode == 1
    assert "untrusted_certificate" in done.stderr
    body = http.get(f"/v1/presentation-requests/{created['request_id']}").json()
    assert body["state"] == "pending"  # nothing was sent


@pytest.fixture
def citizen_wallet_without_trust(tmp_path: Path, http: httpx.Client) -> Path:
    wallet = Wallet.open(tmp_path / "untrusting.json")
    key = wallet.new_key()
    issued = http.post(
        "/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public_jwk(key.key)}
    )
    assert issued.status_code == 201, issued.text
    wallet.add(issued.json()["credential"], key)
    wallet.save()
    return wallet.path
