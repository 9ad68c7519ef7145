"""The whole trusted verification flow in one test, as a phone wallet and two apps live it:
offer → token → nonce → credential (OpenID4VCI) → presentation request → wallet answer →
verdict (OpenID4VP), over real HTTP and a real Redis, then revocation seen by the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from service.api.server import BackgroundServer
from service.keyring.certificates import Pki
from service.wallet.openid4vci import accept
from service.wallet.openid4vp import present
from service.wallet.store import Wallet

REQUESTED = [["given_name"], ["family_name#ar"], ["place_of_birth", "locality"]]


def _verdict(http: httpx.Client, request_id: str) -> dict[str, Any]:
    answer = http.get(f"/v1/presentation-requests/{request_id}", params={"wait": 5}).json()
    assert answer["state"] in {"completed", "failed"}, answer
    return answer["verdict"]


def test_offer_to_verdict_and_revocation(
    server: BackgroundServer, http: httpx.Client, citizen: dict[str, Any], tmp_path: Path
) -> None:
    offer = http.post("/v1/credential-offers", json={"claims": citizen, "tx_code": True}).json()
    wallet = Wallet.open(tmp_path / "wallet.json")
    # The phone trusts the relying party's root (HAIP: requests are signed, x509_hash).
    wallet.add_trust(Pki(server.settings.keys_dir).root())
    with httpx.Client(timeout=10) as phone:  # the wallet has no API key
        stored = accept(offer["offer_uri"], wallet=wallet, http=phone, pin=offer["tx_code"])
        assert stored.vct == server.settings.national_id_vct
        credential_id = http.get(f"/v1/credential-offers/{offer['offer_id']}").json()[
            "credential_id"
        ]

        request = http.post(
            "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": "التحقق من الهوية"}
        ).json()
        # The holder also discloses its birth date; the relying party must not receive it.
        result = present(
            request["wallet_uri"],
            wallet=wallet,
            http=phone,
            claims=[tuple(p) for p in REQUESTED] + [("birthdate",)],
        )
        assert result.accepted
        verdict = _verdict(http, request["request_id"])
        assert verdict["valid"] is True
        assert verdict["claims"] == {
            "given_name": "Amina",
            "family_name#ar": "الإدريسي",
            "place_of_birth": {"locality": "Fès"},
        }

        assert http.post(f"/v1/credentials/{credential_id}/revoke").status_code == 200
        request = http.post(
            "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": "Second check"}
        ).json()
        result = present(request["wallet_uri"], wallet=wallet, http=phone)
        assert not result.accepted
        verdict = _verdict(http, request["request_id"])
        assert verdict["valid"] is False
        assert [e["code"] for e in verdict["errors"]] == ["revoked"]
        assert verdict["claims"] is None

    metrics = http.get("/metrics").text
    assert 'thiqa_verifications_total{result="valid"} 1.0' in metrics
    assert 'thiqa_verifications_total{result="invalid"} 1.0' in metrics
    assert 'thiqa_verification_errors_total{code="revoked"} 1.0' in metrics
