"""Thiqa's HAIP verifier and issuer against independent code: the OpenWallet Foundation's
``@openid4vc/openid4vp`` and ``@sd-jwt/sd-jwt-vc`` (npm, pinned by ``openid4vp/package-lock.json``
and installed with ``npm ci``) act as the wallet.

The wallet parses Thiqa's default request link, fetches the signed ``x509_hash`` Request
Object by reference, checks its ``x5c`` chain against Thiqa's root and its signature with its
own code, presents exactly the requested claims with a KB-JWT, encrypts the answer to the
request's key (``direct_post.jwt``) and posts it. Thiqa's verdict must be valid with exactly
the requested claims. The same libraries verify a Thiqa credential through its ``x5c``
header. Skipped only where node or npm is missing; CI has both, and a failing install fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from service.core.encoding import b64url_encode
from service.core.keys import public_jwk
from service.keyring.certificates import Pki
from service.settings import Settings

HERE = Path(__file__).resolve().parent / "openid4vp"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NODE is None or NPM is None,
        reason="node and npm are needed to run the OpenWallet Foundation wallet (not installed)",
    ),
]

CITIZEN: dict[str, Any] = {
    "given_name": "Amina",
    "given_name#ar": "أمينة",
    "family_name": "El Idrissi",
    "family_name#ar": "الإدريسي",
    "birthdate": "1990-04-12",
    "place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"},
    "national_id": "ZZ104233",
    "nationality": "MA",
}


@pytest.fixture(scope="module")
def owf_wallet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wallet script with its locked packages installed beside it (``npm ci``: exactly
    the versions of the lockfile; nothing is written into the source tree)."""
    folder = tmp_path_factory.mktemp("openid4vp-wallet")
    for name in ("package.json", "package-lock.json", "wallet.mjs"):
        shutil.copy(HERE / name, folder / name)
    assert NPM is not None
    installed = subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    return folder


def _node(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, "wallet.mjs", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _holder() -> tuple[dict[str, str], dict[str, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    d = key.private_numbers().private_value.to_bytes(32, "big")
    public = public_jwk(key)
    return public, {**public, "d": b64url_encode(d)}


def test_owf_wallet_completes_a_default_haip_request(
    owf_wallet: Path, http: httpx.Client, settings: Settings
) -> None:
    public, private = _holder()
    issued = http.post("/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public})
    assert issued.status_code == 201, issued.text
    created = http.post(
        "/v1/presentation-requests",
        json={
            "claims": [["given_name"], ["family_name#ar"], ["place_of_birth", "locality"]],
            "purpose": "Open an account",
        },
    ).json()
    root = settings.keys_dir / "pki" / "root.pem"
    run = _node(
        owf_wallet,
        "present",
        created["wallet_uri"],
        issued.json()["credential"],
        json.dumps(private),
        str(root),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout)
    assert answer["client_id"] == created["client_id"]
    assert answer["client_id"].startswith("x509_hash:")
    assert answer["response_mode"] == "direct_post.jwt"
    assert answer["status"] == 200, answer
    result = http.get(f"/v1/presentation-requests/{created['request_id']}").json()
    assert result["state"] == "completed"
    verdict = result["verdict"]
    assert verdict["valid"] is True, verdict
    assert verdict["claims"] == {
        "given_name": "Amina",
        "family_name#ar": "الإدريسي",
        "place_of_birth": {"locality": "Fès"},
    }


def test_owf_wallet_refuses_a_request_under_another_root(
    owf_wallet: Path, http: httpx.Client, tmp_path: Path
) -> None:
    public, private = _holder()
    issued = http.post("/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public})
    created = http.post(
        "/v1/presentation-requests", json={"claims": [["given_name"]], "purpose": "Check"}
    ).json()
    other = Pki(tmp_path / "other")
    other.init(common_name="Another root", now=int(time.time()))
    run = _node(
        owf_wallet,
        "present",
        created["wallet_uri"],
        issued.json()["credential"],
        json.dumps(private),
        str(other.dir / "root.pem"),
    )
    assert run.returncode == 1
    state = http.get(f"/v1/presentation-requests/{created['request_id']}").json()["state"]
    assert state == "pending"


def test_sd_jwt_vc_library_verifies_thiqa_credentials_through_x5c(
    owf_wallet: Path, http: httpx.Client, settings: Settings
) -> None:
    issued = http.post("/v1/credentials", json={"claims": CITIZEN}).json()
    run = _node(
        owf_wallet, "verify", issued["credential"], str(settings.keys_dir / "pki" / "root.pem")
    )
    assert run.returncode == 0, run.stderr[-3000:]
    verified = json.loads(run.stdout)
    assert verified["payload"]["iss"] == settings.issuer_url
    assert verified["payload"]["given_name"] == "Amina"
    assert verified["header"]["x5c"]
