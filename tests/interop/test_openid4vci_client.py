"""Thiqa's OpenID4VCI issuer and an independent wallet: the OpenWallet Foundation's
``@openid4vc/openid4vci`` client (npm, pinned in ``openid4vci/package.json``) on Node.

The client resolves the offer by reference, validates Thiqa's issuer and authorization server
metadata with its own schemas, redeems the pre-authorized code with the transaction code,
fetches a nonce, signs its own key proof and retrieves the credential. The credential must
then verify at Thiqa, bound to the client's key. Skipped only where node or npm is missing;
CI has both, and a failing ``npm install`` fails the test.
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

from service.api.server import BackgroundServer
from service.core import holder
from service.core.encoding import b64url_decode
from service.core.keys import SigningKey, jwk_thumbprint, public_jwk

HERE = Path(__file__).resolve().parent / "openid4vci"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="node and npm are needed to run the @openid4vc/openid4vci wallet (not installed)",
)

CITIZEN: dict[str, Any] = {
    "given_name": "Amina",
    "given_name#ar": "أمينة",
    "family_name": "El Idrissi",
    "family_name#ar": "الإدريسي",
    "birthdate": "1990-04-12",
    "national_id": "ZZ104233",
    "nationality": "MA",
}


@pytest.fixture(scope="module")
def node_wallet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wallet script with its pinned packages installed beside it (from the npm
    registry; nothing is written into the source tree)."""
    folder = tmp_path_factory.mktemp("openid4vci-wallet")
    for name in ("package.json", "wallet.mjs"):
        shutil.copy(HERE / name, folder / name)
    assert NPM is not None
    installed = subprocess.run(
        [NPM, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    return folder


def _key(jwk: dict[str, str]) -> SigningKey:
    private = ec.derive_private_key(int.from_bytes(b64url_decode(jwk["d"]), "big"), ec.SECP256R1())
    return SigningKey(kid=jwk_thumbprint(public_jwk(private)), alg="ES256", key=private)


def test_openid4vc_ts_wallet_receives_a_bound_credential(
    node_wallet: Path,
    server: BackgroundServer,
    http: httpx.Client,
) -> None:
    offer = http.post("/v1/credential-offers", json={"claims": CITIZEN}).json()
    assert NODE is not None
    run = subprocess.run(
        [NODE, "wallet.mjs", offer["offer_uri"], offer["tx_code"]],
        cwd=node_wallet,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    received = json.loads(run.stdout)
    # The client read Thiqa's metadata as OpenID4VCI 1.0 (Final), not as a draft.
    assert received["version"] == "V1", received["version"]
    key = _key(received["private_jwk"])
    presentation = holder.present(
        received["credential"],
        ("given_name#ar", "national_id"),
        holder_key=key,
        nonce="interop-nonce-1",
        audience="https://verifier.example",
        now=int(time.time()),
    )
    verdict = http.post(
        "/v1/verify",
        json={
            "credential": presentation,
            "nonce": "interop-nonce-1",
            "audience": "https://verifier.example",
        },
    ).json()
    assert verdict["valid"] is True, verdict
    assert verdict["key_bound"] is True
    assert verdict["claims"] == {"given_name#ar": "أمينة", "national_id": "ZZ104233"}
    info = http.get(f"/v1/credential-offers/{offer['offer_id']}").json()
    assert info["status"] == "issued"


def test_openid4vc_ts_wallet_with_a_wrong_transaction_code(
    node_wallet: Path,
    server: BackgroundServer,
    http: httpx.Client,
) -> None:
    offer = http.post("/v1/credential-offers", json={"claims": CITIZEN}).json()
    wrong = "000000" if offer["tx_code"] != "000000" else "111111"
    assert NODE is not None
    run = subprocess.run(
        [NODE, "wallet.mjs", offer["offer_uri"], wrong],
        cwd=node_wallet,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0
    assert "invalid_grant" in run.stderr
    assert http.get(f"/v1/credential-offers/{offer['offer_id']}").json()["status"] == "offered"
