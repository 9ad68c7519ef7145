"""``thiqa wallet`` as a tester runs it: a real process against a live Thiqa over real HTTP.

The wallet is an independent client: it learns everything from the offer and the issuer's
published metadata and keys, and checks the credential and the status list against those.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service.api.server import BackgroundServer
from service.core import credential as sdjwt_vc
from service.core.keys import generate_signing_key, public_jwk
from service.wallet.openid4vci import Discovery, check_credential, new_http, read_offer
from service.wallet.qr import decode_png
from service.wallet.store import Wallet, WalletError

THIQA = [sys.executable, "-m", "service.cli"]


@pytest.fixture
def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {**base, "COLUMNS": "220", "PYTHONIOENCODING": "utf-8"}


def thiqa(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
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
def citizen() -> dict[str, Any]:
    return {
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


@pytest.fixture
def citizen_offer(http: httpx.Client, citizen: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/v1/credential-offers", json={"claims": citizen})
    assert response.status_code == 201, response.text
    return response.json()


def credential_id_of(http: httpx.Client, offer: dict[str, Any]) -> str:
    info = http.get(f"/v1/credential-offers/{offer['offer_id']}").json()
    assert info["status"] == "issued", info
    return info["credential_id"]


def test_accept_list_show_status_revoke(
    server: BackgroundServer,
    http: httpx.Client,
    citizen_offer: dict[str, Any],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    wallet_file = tmp_path / "w" / "wallet.json"
    accepted = thiqa(
        [
            "wallet",
            "accept",
            citizen_offer["offer_uri"],
            "--pin",
            citizen_offer["tx_code"],
            "--wallet",
            str(wallet_file),
        ],
        env,
        tmp_path,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "Received credential" in accepted.stdout
    assert "Amina El Idrissi" in accepted.stdout
    assert "أمينة الإدريسي" in accepted.stdout
    assert stat.S_IMODE(wallet_file.stat().st_mode) == 0o600
    stored = json.loads(wallet_file.read_text("utf-8"))
    assert len(stored["credentials"]) == 1
    assert len(stored["keys"]) == 1
    credential_id = stored["credentials"][0]["id"]

    listed = thiqa(["wallet", "list", "--wallet", str(wallet_file)], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert credential_id in listed.stdout
    assert "Amina El Idrissi" in listed.stdout
    assert "أمينة الإدريسي" in listed.stdout
    assert server.url in listed.stdout

    shown = thiqa(
        ["wallet", "show", credential_id[:6], "--wallet", str(wallet_file)], env, tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    for text in (
        "Given name",
        "الاسم الشخصي",
        "National ID number",
        "ZZ104233",
        "place_of_birth.locality#ar",
        "فاس",
        "1990-04-12",
    ):
        assert text in shown.stdout, text
    in_french = thiqa(
        ["wallet", "show", credential_id, "--lang", "fr", "--wallet", str(wallet_file)],
        env,
        tmp_path,
    )
    assert "Numéro de la carte nationale" in in_french.stdout

    status = thiqa(["wallet", "status", credential_id, "--wallet", str(wallet_file)], env, tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == f"{credential_id}: valid"

    issued_id = credential_id_of(http, citizen_offer)
    assert http.post(f"/v1/credentials/{issued_id}/suspend").status_code == 200
    suspended = thiqa(
        ["wallet", "status", credential_id, "--wallet", str(wallet_file)], env, tmp_path
    )
    assert suspended.stdout.strip() == f"{credential_id}: suspended"
    assert http.post(f"/v1/credentials/{issued_id}/revoke").status_code == 200
    revoked = thiqa(
        ["wallet", "status", credential_id, "--wallet", str(wallet_file)], env, tmp_path
    )
    assert revoked.stdout.strip() == f"{credential_id}: revoked"


def test_accept_from_a_qr_code_png(
    server: BackgroundServer,
    http: httpx.Client,
    citizen_offer: dict[str, Any],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    png = tmp_path / "offer.png"
    png.write_bytes(base64.b64decode(citizen_offer["qr_png"]))
    assert decode_png(png) == citizen_offer["offer_uri"]
    # The default wallet file, under the working directory.
    accepted = thiqa(
        ["wallet", "accept", str(png), "--pin", citizen_offer["tx_code"]], env, tmp_path
    )
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "var" / "wallet.json").exists()
    listed = thiqa(["wallet", "list"], env, tmp_path)
    assert "أمينة الإدريسي" in listed.stdout
    credential_id_of(http, citizen_offer)


def test_a_spent_offer_is_explained_and_the_wallet_lives_in_the_data_dir(
    server: BackgroundServer,
    http: httpx.Client,
    citizen_offer: dict[str, Any],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "elsewhere"
    with_data_dir = {**env, "THIQA_DATA_DIR": str(data_dir)}
    offer, pin = citizen_offer["offer_uri"], citizen_offer["tx_code"]
    first = thiqa(["wallet", "accept", offer, "--pin", pin], with_data_dir, tmp_path)
    assert first.returncode == 0, first.stderr
    # THIQA_DATA_DIR decides where the default wallet file is, as for the embedded Redis.
    assert (data_dir / "wallet.json").exists()
    assert not (tmp_path / "var").exists()
    assert "أمينة الإدريسي" in thiqa(["wallet", "list"], with_data_dir, tmp_path).stdout

    again = thiqa(["wallet", "accept", offer, "--pin", pin], with_data_dir, tmp_path)
    assert again.returncode == 1
    message = " ".join(again.stderr.split())
    assert "is no longer available: it was already accepted, has expired, or was withdrawn" in (
        message
    )
    assert "(HTTP 404)" in message
    assert len(Wallet.open(data_dir / "wallet.json").credentials()) == 1  # nothing added


def test_qr_decoding_of_a_colour_png_with_transparency(tmp_path: Path) -> None:
    import png as pypng
    import segno

    code = segno.make(
        "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fx.ma%2Fo", error="m"
    )
    matrix = [[bool(v) for v in row] for row in code.matrix]
    scale, border = 5, 4
    size = (len(matrix) + 2 * border) * scale
    rows = []
    for y in range(size):
        row: list[int] = []
        for x in range(size):
            my, mx = y // scale - border, x // scale - border
            dark = 0 <= my < len(matrix) and 0 <= mx < len(matrix) and matrix[my][mx]
            row.extend((20, 30, 90, 255) if dark else (0, 0, 0, 0))  # transparent background
        rows.append(row)
    path = tmp_path / "rgba.png"
    with path.open("wb") as handle:
        pypng.Writer(size, size, greyscale=False, alpha=True).write(handle, rows)
    assert (
        decode_png(path) == "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fx.ma%2Fo"
    )
    not_qr = tmp_path / "blank.png"
    with not_qr.open("wb") as handle:
        pypng.Writer(40, 40, greyscale=True).write(handle, [[255] * 40] * 40)
    with pytest.raises(WalletError, match="no QR code"):
        decode_png(not_qr)


def test_accept_from_the_https_offer_url(
    server: BackgroundServer,
    http: httpx.Client,
    citizen_offer: dict[str, Any],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    accepted = thiqa(
        [
            "wallet",
            "accept",
            citizen_offer["credential_offer_uri"],
            "--pin",
            citizen_offer["tx_code"],
            "--wallet",
            str(tmp_path / "w.json"),
        ],
        env,
        tmp_path,
    )
    assert accepted.returncode == 0, accepted.stderr
    credential_id_of(http, citizen_offer)


def test_accept_without_or_with_a_wrong_pin(
    server: BackgroundServer,
    http: httpx.Client,
    citizen_offer: dict[str, Any],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    wallet_file = tmp_path / "w.json"
    missing = thiqa(
        ["wallet", "accept", citizen_offer["offer_uri"], "--wallet", str(wallet_file)],
        env,
        tmp_path,
    )
    assert missing.returncode == 1
    assert "needs its transaction code (6 digits): pass --pin" in missing.stderr
    wrong = "000000" if citizen_offer["tx_code"] != "000000" else "111111"
    refused = thiqa(
        [
            "wallet",
            "accept",
            citizen_offer["offer_uri"],
            "--pin",
            wrong,
            "--wallet",
            str(wallet_file),
        ],
        env,
        tmp_path,
    )
    assert refused.returncode == 1
    assert "invalid_grant" in refused.stderr
    assert not wallet_file.exists()
    # One guess spent, two left: the right code still works.
    assert (
        http.get(f"/v1/credential-offers/{citizen_offer['offer_id']}").json()["status"] == "offered"
    )
    ok = thiqa(
        [
            "wallet",
            "accept",
            citizen_offer["offer_uri"],
            "--pin",
            citizen_offer["tx_code"],
            "--wallet",
            str(wallet_file),
        ],
        env,
        tmp_path,
    )
    assert ok.returncode == 0, ok.stderr


def test_the_wallet_refuses_untrusted_transport(env: dict[str, str], tmp_path: Path) -> None:
    offer = {
        "credential_issuer": "http://issuer.example",
        "credential_configuration_ids": ["x"],
        "grants": {
            "urn:ietf:params:oauth:grant-type:pre-authorized_code": {"pre-authorized_code": "c"}
        },
    }
    by_value = "openid-credential-offer://?credential_offer=" + quote(json.dumps(offer))
    result = thiqa(
        ["wallet", "accept", by_value, "--wallet", str(tmp_path / "w.json")], env, tmp_path
    )
    assert result.returncode == 1
    assert "must be an https URL" in result.stderr
    for bad in (
        "openid-credential-offer://?credential_offer_uri=http%3A%2F%2F10.0.0.1%2Fo",
        "ftp://example.com/offer",
        "not an offer",
    ):
        assert (
            thiqa(
                ["wallet", "accept", bad, "--wallet", str(tmp_path / "w.json")], env, tmp_path
            ).returncode
            == 1
        )


def test_unknown_credential_and_empty_wallet(env: dict[str, str], tmp_path: Path) -> None:
    wallet_file = str(tmp_path / "w.json")
    assert (
        "No credentials" in thiqa(["wallet", "list", "--wallet", wallet_file], env, tmp_path).stdout
    )
    result = thiqa(["wallet", "status", "abc", "--wallet", wallet_file], env, tmp_path)
    assert result.returncode == 1
    assert "no single credential" in result.stderr


def test_the_wallet_checks_the_credential_it_receives(
    server: BackgroundServer,
    http: httpx.Client,
    citizen: dict[str, Any],
) -> None:
    """A credential not signed by the issuer's published keys, or bound to another key than
    the one the wallet proved, is refused."""
    holder = generate_signing_key("ES256")
    issued = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(holder.key)}
    ).json()["credential"]
    with new_http() as client:
        offer = http.post("/v1/credential-offers", json={"claims": citizen}).json()
        discovery = _discovery(server, read_offer(offer["offer_uri"], client).credential_issuer)
        check_credential(issued, discovery=discovery, key=holder, http=client)
        with pytest.raises(WalletError, match="not bound"):
            check_credential(
                issued, discovery=discovery, key=generate_signing_key("ES256"), http=client
            )
        forger = generate_signing_key("ES256")
        payload = json.loads(base64.urlsafe_b64decode(issued.split(".")[1] + "=="))
        forged = sdjwt_vc.issue(
            {"given_name": "Amina"},
            issuer=payload["iss"],
            vct=payload["vct"],
            key=forger,
            status=sdjwt_vc.StatusReference(**payload["status"]["status_list"]),
            issued_at=int(time.time()),
            expires_at=int(time.time()) + 3600,
            holder_jwk=public_jwk(holder.key),
        )
        with pytest.raises(WalletError, match="does not verify: unknown_key"):
            check_credential(forged, discovery=discovery, key=holder, http=client)


def _discovery(server: BackgroundServer, issuer: str) -> Discovery:
    return Discovery(
        credential_issuer=issuer,
        configuration_id="thiqa_national_id",
        vct=server.settings.national_id_vct,
        credential_endpoint="",
        nonce_endpoint=None,
        token_endpoint="",
        proof_algs=("ES256",),
    )


def test_wallet_file_round_trip(tmp_path: Path) -> None:
    wallet = Wallet.open(tmp_path / "w.json")
    assert wallet.credentials() == []


#: Claims another issuer could sign: a terminal hyperlink in Rich markup and as an OSC 8
#: escape, a screen clear, a C1 control sequence introducer, and a right-to-left override.
HOSTILE_CLAIMS = {
    "given_name": "[link=https://evil.example/a]Amina[/link]",
    "family_name": "El\x1b[2J\x1b]8;;https://evil.example/b\x1b\\Idrissi\x1b]8;;\x1b\\",
    "given_name#ar": "\u202eأمينة",
    "family_name#ar": "\x9b2Jالإدريسي",
    "nationality": "MA\x07",
}


def test_a_crafted_credential_from_another_issuer_prints_no_escape_or_link(
    env: dict[str, str], tmp_path: Path
) -> None:
    wallet_file = tmp_path / "wallet.json"
    wallet = Wallet.open(wallet_file)
    key = wallet.new_key()
    crafted = sdjwt_vc.issue(
        HOSTILE_CLAIMS,
        issuer="https://evil.example/[bold]issuer[/bold]\x1b[31m",
        # Unreachable, so the labels are the national ID's packaged ones.
        vct="http://127.0.0.1:9/types/national-id",
        key=generate_signing_key("ES256"),
        status=sdjwt_vc.StatusReference(uri="https://evil.example/status/1", idx=0),
        issued_at=int(time.time()),
        expires_at=int(time.time()) + 3600,
        holder_jwk=public_jwk(key.key),
    )
    stored = wallet.add(crafted, key)
    wallet.save()
    # As a terminal would get it: colours and hyperlinks on.
    terminal = {**env, "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    for args in (["list"], ["show", stored.id], ["show", stored.id, "--lang", "ar"]):
        result = thiqa(["wallet", *args, "--wallet", str(wallet_file)], terminal, tmp_path)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "\x1b]8;" not in out  # no hyperlink, from markup or from an escape
        for raw in ("\x1b[2J", "\x1b[31m", "\x9b", "\u202e", "\x07"):
            assert raw not in out
        # What was hidden is shown for what it is.
        assert "[link=https://evil.example/a]" in out
        assert "\\u202e" in out
        assert "\\u001b[2J" in out or args == ["list"]
