"""The issuer's keys on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.core.keys import jwk_thumbprint, public_jwk
from service.keyring import KeyRingError, load_or_create


def test_first_start_generates_a_p256_key_with_mode_0600(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    ring = load_or_create(keys_dir)
    assert ring.active.alg == "ES256"
    (pem,) = keys_dir.glob("*.pem")
    assert pem.stem == ring.active.kid == jwk_thumbprint(public_jwk(ring.active.key))
    assert pem.stat().st_mode & 0o777 == 0o600
    assert keys_dir.stat().st_mode & 0o777 == 0o700
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    index = json.loads((keys_dir / "keyring.json").read_text())
    assert index["active"] == ring.active.kid


def test_second_start_loads_the_same_key(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    second = load_or_create(tmp_path)
    assert second.active.kid == first.active.kid
    assert len(list(tmp_path.glob("*.pem"))) == 1


def test_jwks_has_no_private_members(tmp_path: Path) -> None:
    (jwk,) = load_or_create(tmp_path).jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_passphrase_encrypts_at_rest(tmp_path: Path) -> None:
    ring = load_or_create(tmp_path, passphrase=b"correct horse")
    (pem,) = tmp_path.glob("*.pem")
    assert "ENCRYPTED PRIVATE KEY" in pem.read_text()
    assert load_or_create(tmp_path, passphrase=b"correct horse").active.kid == ring.active.kid
    with pytest.raises(KeyRingError):
        load_or_create(tmp_path, passphrase=b"wrong")
    with pytest.raises(KeyRingError):
        load_or_create(tmp_path)


def test_eddsa_issuer_key(tmp_path: Path) -> None:
    ring = load_or_create(tmp_path, alg="EdDSA")
    assert ring.active.alg == "EdDSA"
    assert ring.jwks()["keys"][0]["crv"] == "Ed25519"


def test_renamed_key_file_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    (pem,) = tmp_path.glob("*.pem")
    pem.rename(tmp_path / "other.pem")
    with pytest.raises(KeyRingError):
        load_or_create(tmp_path)


def test_missing_index_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    (tmp_path / "keyring.json").unlink()
    with pytest.raises(KeyRingError):
        load_or_create(tmp_path)
