"""The wallet file as a tester may leave it: a hand-edited entry that cannot be a credential
(or whose key is gone) is refused when the file is opened, naming the credential, instead of
failing later with a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.core.encoding import b64url_encode
from service.wallet.store import Wallet, WalletError


def credential_text(payload: Any = None) -> str:
    header = b64url_encode(json.dumps({"alg": "ES256", "typ": "dc+sd-jwt"}).encode())
    claims = (
        {
            "iss": "https://issuer.example",
            "vct": "https://issuer.example/types/pid",
            "exp": 1_900_000_000,
        }
        if payload is None
        else payload
    )
    return f"{header}.{b64url_encode(json.dumps(claims).encode())}.c2ln~"


def saved_wallet(path: Path) -> str:
    wallet = Wallet.open(path)
    stored = wallet.add(credential_text(), wallet.new_key())
    wallet.save()
    return stored.id


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["credentials"][0][field] = value

    return change


def _drop_keys(document: dict[str, Any]) -> None:
    document["keys"] = []


CORRUPTIONS = {
    "not an SD-JWT": _set("credential", "garbage"),
    "empty component": _set("credential", "a.b.c~~"),
    "payload not base64url": _set("credential", "eyJhbGciOiJFUzI1NiJ9.***.c2ln~"),
    "payload not JSON": _set("credential", f"e30.{b64url_encode(b'not json')}.c2ln~"),
    "payload not an object": _set("credential", credential_text(payload=[1, 2])),
    "payload not UTF-8": _set("credential", "e30." + b64url_encode(b"{\xff}") + ".c2ln~"),
    "not a string": _set("credential", 42),
    "two parts": _set("credential", "e30.e30~"),
    "key missing": _drop_keys,
    "key_id of another key": _set("key_id", "no-such-key"),
}


def corrupt(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text("utf-8"))
    change(document)
    path.write_text(json.dumps(document), "utf-8")


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_corrupt_credential_entry_is_refused_by_its_id(tmp_path: Path, case: str) -> None:
    path = tmp_path / "wallet.json"
    credential_id = saved_wallet(path)
    corrupt(path, CORRUPTIONS[case])
    with pytest.raises(WalletError, match=f"credential {credential_id}") as raised:
        Wallet.open(path)
    assert "\n" not in str(raised.value)


def test_a_sound_wallet_opens_with_its_credential_and_key(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    credential_id = saved_wallet(path)
    wallet = Wallet.open(path)
    [stored] = wallet.credentials()
    assert stored.id == credential_id
    assert wallet.key(stored.key_id).kid == stored.key_id
    assert stored.payload()["iss"] == "https://issuer.example"
