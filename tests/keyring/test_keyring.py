"""The issuer's keys on disk."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from service.core.keys import generate_signing_key, jwk_thumbprint, public_jwk
from service.keyring.keyring import (
    KeyEntry,
    KeyRingError,
    KeyStatus,
    load_or_create,
    write_index,
    write_private,
)


def test_first_start_generates_a_p256_key_with_mode_0600(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    ring = load_or_create(keys_dir)
    assert ring.active.alg == "ES256"
    (pem,) = keys_dir.glob("*.pem")
    assert pem.stem == ring.active.kid == jwk_thumbprint(public_jwk(ring.active.key))
    assert pem.stat().st_mode & 0o777 == 0o600
    assert keys_dir.stat().st_mode & 0o777 == 0o700
    # PKCS#8, unencrypted (no passphrase configured): it loads without a password.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert load_pem_private_key(pem.read_bytes(), password=None) is not None
    assert b"ENCRYPTED" not in pem.read_bytes()
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


# --- statuses in the index -------------------------------------------------------------------


def _index(keys_dir: Path) -> dict:
    return json.loads((keys_dir / "keyring.json").read_text())


def test_index_records_status_and_times(tmp_path: Path) -> None:
    ring = load_or_create(tmp_path)
    (entry,) = _index(tmp_path)["keys"]
    assert entry["kid"] == ring.active.kid
    assert entry["status"] == "active"
    assert entry["created_at"] == entry["activate_after"]
    assert datetime.fromisoformat(entry["created_at"]).tzinfo is not None
    assert ring.entries[0].status is KeyStatus.ACTIVE
    assert ring.revoked == frozenset()
    assert ring.next_change is None


def test_index_of_the_first_format_still_loads(tmp_path: Path) -> None:
    # Rings written before keys had statuses: the named key signs, any other is retired.
    first = load_or_create(tmp_path)
    other = generate_signing_key("EdDSA")
    write_private(tmp_path, other, None)
    (tmp_path / "keyring.json").write_text(
        json.dumps(
            {
                "active": first.active.kid,
                "keys": [
                    {"kid": first.active.kid, "alg": "ES256", "file": f"{first.active.kid}.pem"},
                    {"kid": other.kid, "alg": "EdDSA", "file": f"{other.kid}.pem"},
                ],
                "updated_at": "2025-01-01T00:00:00+00:00",
            }
        )
    )
    ring = load_or_create(tmp_path)
    assert ring.active.kid == first.active.kid
    assert set(ring.keys) == {first.active.kid, other.kid}
    assert {e.kid: e.status for e in ring.entries} == {
        first.active.kid: KeyStatus.ACTIVE,
        other.kid: KeyStatus.RETIRED,
    }


def test_a_key_file_the_index_does_not_name_is_never_published(tmp_path: Path) -> None:
    # What a rotation that crashed between writing the key and the index leaves behind.
    ring = load_or_create(tmp_path)
    write_private(tmp_path, generate_signing_key("ES256"), None)
    again = load_or_create(tmp_path)
    assert set(again.keys) == {ring.active.kid}
    assert [k["kid"] for k in again.jwks()["keys"]] == [ring.active.kid]


def test_a_folder_with_keys_but_no_index_is_refused_not_regenerated(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    (tmp_path / "keyring.json").unlink()
    with pytest.raises(KeyRingError):
        load_or_create(tmp_path)
    assert len(list(tmp_path.glob("*.pem"))) == 1


def _edit(keys_dir: Path, change) -> None:
    index = _index(keys_dir)
    change(index)
    (keys_dir / "keyring.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.update(active="x" * 43), "'active' does not name"),
        (lambda i: i["keys"][0].update(status="retired"), "exactly one key must be active"),
        (lambda i: i["keys"][0].update(status="sleeping"), "unknown status"),
        (lambda i: i["keys"][0].update(kid="../../etc/passwd"), "not an RFC 7638 thumbprint"),
        # "$" alone would let a trailing newline through (re.match, not re.fullmatch).
        (lambda i: i["keys"][0].update(kid=i["active"] + "\n"), "not an RFC 7638 thumbprint"),
        (lambda i: i["keys"][0].update(alg="HS256"), "unsupported alg"),
        (lambda i: i["keys"][0].update(alg="EdDSA"), "alg does not match its file"),
        (lambda i: i["keys"][0].update(created_at="yesterday"), "not an ISO 8601 time"),
        (lambda i: i["keys"][0].update(created_at="2025-01-01T00:00:00"), "no time zone"),
        (lambda i: i["keys"].append(dict(i["keys"][0], status="retired")), "appears twice"),
        (lambda i: i.update(keys=[]), "non-empty list"),
    ],
)
def test_a_bad_edit_of_the_index_is_refused(tmp_path: Path, change, message: str) -> None:
    load_or_create(tmp_path)
    _edit(tmp_path, change)
    with pytest.raises(KeyRingError, match=message):
        load_or_create(tmp_path)


def test_a_pending_key_without_activation_time_is_refused(tmp_path: Path) -> None:
    ring = load_or_create(tmp_path)
    key = generate_signing_key("ES256")
    write_private(tmp_path, key, None)
    write_index(
        tmp_path,
        [
            KeyEntry(kid=ring.active.kid, alg="ES256", status=KeyStatus.ACTIVE),
            KeyEntry(kid=key.kid, alg="ES256", status=KeyStatus.PENDING),
        ],
    )
    with pytest.raises(KeyRingError, match="no activate_after"):
        load_or_create(tmp_path)


def test_a_pending_key_signs_once_its_time_has_come(tmp_path: Path) -> None:
    old = load_or_create(tmp_path).active
    new = generate_signing_key("EdDSA")
    write_private(tmp_path, new, None)
    write_index(
        tmp_path,
        [
            KeyEntry(kid=old.kid, alg=old.alg, status=KeyStatus.ACTIVE, activate_after=1_000),
            KeyEntry(kid=new.kid, alg=new.alg, status=KeyStatus.PENDING, activate_after=2_000),
        ],
    )
    before = load_or_create(tmp_path, now=1_999)
    assert before.active.kid == old.kid
    assert set(before.keys) == {old.kid, new.kid}  # published before it signs
    assert before.next_change == 2_000
    after = load_or_create(tmp_path, now=2_000)
    assert after.active.kid == new.kid
    assert set(after.keys) == {old.kid, new.kid}  # the old key still verifies what it signed
    assert {e.kid: (e.status, e.retired_at) for e in after.entries} == {
        old.kid: (KeyStatus.RETIRED, 2_000),
        new.kid: (KeyStatus.ACTIVE, None),
    }
    assert after.next_change is None
    # Reading applies the switch; only the thiqa keys commands write it down.
    assert _index(tmp_path)["active"] == old.kid


def test_a_revoked_key_is_neither_published_nor_loaded(tmp_path: Path) -> None:
    old = load_or_create(tmp_path).active
    new = generate_signing_key("ES256")
    write_private(tmp_path, new, None)
    write_index(
        tmp_path,
        [
            KeyEntry(kid=old.kid, alg=old.alg, status=KeyStatus.REVOKED, revoked_at=5),
            KeyEntry(kid=new.kid, alg=new.alg, status=KeyStatus.ACTIVE),
        ],
    )
    (tmp_path / f"{old.kid}.pem").unlink()  # an operator may delete a compromised key's file
    ring = load_or_create(tmp_path)
    assert ring.active.kid == new.kid
    assert set(ring.keys) == {new.kid}
    assert ring.revoked == {old.kid}
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid]


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    ring = load_or_create(tmp_path)
    (tmp_path / f"{ring.active.kid}.pem").unlink()
    with pytest.raises(KeyRingError, match="file is missing"):
        load_or_create(tmp_path)


def test_the_index_is_replaced_atomically_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    assert not (tmp_path / ".keyring.json.tmp").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".pem") == [
        ".keyring.lock",
        "keyring.json",
    ]
