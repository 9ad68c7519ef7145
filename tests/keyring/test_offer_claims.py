"""Sealing an offer's parked claims: AES-GCM under a key in keys/, bound to the offer id,
rotatable without losing the offers that wait."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from service.errors import KeyRingUnavailable
from service.keyring.offer_claims import (
    FILE,
    OfferClaimsSealer,
    UnsealError,
    rotate_offer_claims_key,
)

OFFER = "AAAAAAAAAAAAAAAAAAAAAA"
OTHER_OFFER = "BBBBBBBBBBBBBBBBBBBBBB"
CLAIMS = json.dumps({"national_id": "ZZ104233", "given_name#ar": "أمينة"}).encode()
T0 = 1_800_000_000


def test_sealed_claims_open_for_their_offer_only(tmp_path: Path) -> None:
    sealer = OfferClaimsSealer(tmp_path)
    sealed = sealer.seal(CLAIMS, offer_id=OFFER)
    assert b"ZZ104233" not in sealed.encode()
    assert sealer.open(sealed, offer_id=OFFER) == CLAIMS
    with pytest.raises(UnsealError, match="another offer"):
        sealer.open(sealed, offer_id=OTHER_OFFER)
    # Two seals of the same claims differ (a fresh nonce each time).
    assert sealer.seal(CLAIMS, offer_id=OFFER) != sealed


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    OfferClaimsSealer(tmp_path).seal(CLAIMS, offer_id=OFFER)
    path = tmp_path / FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    OfferClaimsSealer(tmp_path).seal(CLAIMS, offer_id=OFFER)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1],  # ciphertext or tag
        lambda s: "v2" + s[2:],  # version
        lambda s: s.replace(".", "!", 1),  # shape
        lambda s: "v1.0000000000000000." + s.split(".")[2],  # a key id that is not kept
    ],
)
def test_an_altered_sealed_value_does_not_open(tmp_path: Path, change: object) -> None:
    sealer = OfferClaimsSealer(tmp_path)
    sealed = sealer.seal(CLAIMS, offer_id=OFFER)
    with pytest.raises(UnsealError):
        sealer.open(change(sealed), offer_id=OFFER)  # type: ignore[operator]


def test_rotation_seals_with_the_new_key_and_still_opens_waiting_offers(tmp_path: Path) -> None:
    sealer = OfferClaimsSealer(tmp_path)
    waiting = sealer.seal(CLAIMS, offer_id=OFFER)
    old_kid = waiting.split(".")[1]
    new_kid = rotate_offer_claims_key(tmp_path, now=T0, keep_seconds=600)
    fresh = sealer.seal(CLAIMS, offer_id=OFFER)
    assert fresh.split(".")[1] == new_kid != old_kid
    assert sealer.open(waiting, offer_id=OFFER) == CLAIMS
    # A later rotation, once every offer the old key sealed has expired, drops it.
    rotate_offer_claims_key(tmp_path, now=T0 + 600, keep_seconds=600)
    assert sealer.open(waiting, offer_id=OFFER) == CLAIMS  # retired exactly 600 s ago: kept
    rotate_offer_claims_key(tmp_path, now=T0 + 601, keep_seconds=600)
    with pytest.raises(UnsealError, match="no longer kept"):
        sealer.open(waiting, offer_id=OFFER)
    kids = [k["kid"] for k in json.loads((tmp_path / FILE).read_text())["keys"]]
    assert old_kid not in kids
    assert len(kids) == 3


def test_an_unreadable_key_file_stops_sealing(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text('{"keys": [}')
    with pytest.raises(KeyRingUnavailable):
        OfferClaimsSealer(tmp_path).seal(CLAIMS, offer_id=OFFER)


def test_thiqa_keys_rotate_claims(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    keys_dir = tmp_path / "keys"
    sealer = OfferClaimsSealer(keys_dir)
    waiting = sealer.seal(CLAIMS, offer_id=OFFER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "rotate-claims"],
        env={**env, "THIQA_KEYS_DIR": str(keys_dir), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (new_kid,) = [k["kid"] for k in json.loads((keys_dir / FILE).read_text())["keys"]][1:]
    assert new_kid in result.stdout
    assert sealer.seal(CLAIMS, offer_id=OFFER).split(".")[1] == new_kid
    assert sealer.open(waiting, offer_id=OFFER) == CLAIMS
