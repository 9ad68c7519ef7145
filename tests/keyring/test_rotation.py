"""Key rotation (publish, then sign) and compromise revocation (``key_revoked``).

On disk with the real functions; in a running server that follows ``keys/`` without a
restart; and end to end, with ``thiqa keys`` run as the separate process it is in production
while a live server answers over real HTTP.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization

from service.api.server import BackgroundServer, free_port
from service.core import credential, holder
from service.core.encoding import b64url_decode
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.reasons import MESSAGES, Reason
from service.core.status_list import StatusValue
from service.core.verify import conclude
from service.errors import KeyRingUnavailable
from service.keyring.keyring import (
    KeyEntry,
    KeyRingError,
    KeyStatus,
    load_or_create,
    read_ring,
    write_index,
    write_private,
)
from service.keyring.live import KeyRingHolder, LiveTrust
from service.keyring.rotation import KeyChangeRefused, UnknownKid, revoke, rotate, settle
from service.settings import Settings
from service.store.clients import Scope
from tests.conftest import add_client
from tests.core.helpers import CLAIMS, ISSUER, VCT, issue, run, trusted

THIQA = [sys.executable, "-m", "service.cli"]
DAY = 86_400
T0 = 1_800_000_000


def _index_bytes(keys_dir: Path) -> bytes:
    return (keys_dir / "keyring.json").read_bytes()


def _files(keys_dir: Path) -> set[str]:
    return {p.name for p in keys_dir.iterdir()}


# --- rotation on disk -------------------------------------------------------------------------


def test_rotation_publishes_the_new_key_before_it_signs(tmp_path: Path) -> None:
    old = load_or_create(tmp_path, now=T0).active
    entry = rotate(tmp_path, alg="EdDSA", passphrase=None, publish_seconds=DAY, now=T0)
    assert entry.status is KeyStatus.PENDING
    assert entry.alg == "EdDSA"
    assert (entry.created_at, entry.activate_after) == (T0, T0 + DAY)
    pem = tmp_path / f"{entry.kid}.pem"
    assert pem.stat().st_mode & 0o777 == 0o600

    waiting = load_or_create(tmp_path, now=T0 + DAY - 1)
    assert waiting.active.kid == old.kid  # not signing yet...
    assert entry.kid in {k["kid"] for k in waiting.jwks()["keys"]}  # ...but published
    assert entry.kid in waiting.verification_keys()  # and trusted by the verifier
    assert waiting.next_change == T0 + DAY

    switched = load_or_create(tmp_path, now=T0 + DAY)
    assert switched.active.kid == entry.kid
    assert old.kid in switched.keys  # retired, still published: its credentials verify
    assert {e.kid: e.status for e in switched.entries} == {
        old.kid: KeyStatus.RETIRED,
        entry.kid: KeyStatus.ACTIVE,
    }


def test_activate_now_signs_at_once_and_retires_the_old_key(tmp_path: Path) -> None:
    old = load_or_create(tmp_path, now=T0).active
    entry = rotate(
        tmp_path, alg="ES256", passphrase=None, publish_seconds=DAY, activate_now=True, now=T0
    )
    assert entry.status is KeyStatus.ACTIVE
    ring = load_or_create(tmp_path, now=T0)
    assert ring.active.kid == entry.kid
    assert set(ring.keys) == {old.kid, entry.kid}
    index = json.loads(_index_bytes(tmp_path))
    assert index["active"] == entry.kid
    assert {k["kid"]: k["status"] for k in index["keys"]} == {
        old.kid: "retired",
        entry.kid: "active",
    }


def test_a_zero_publication_delay_signs_at_once(tmp_path: Path) -> None:
    load_or_create(tmp_path, now=T0)
    entry = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=0, now=T0)
    assert entry.status is KeyStatus.ACTIVE
    assert load_or_create(tmp_path, now=T0).active.kid == entry.kid


def test_a_second_rotation_while_one_is_pending_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    load_or_create(tmp_path, now=T0)
    pending = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=DAY, now=T0)
    before, files = _index_bytes(tmp_path), _files(tmp_path)
    with pytest.raises(KeyChangeRefused, match=f"{pending.kid} is already waiting"):
        rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=DAY, now=T0 + 10)
    assert _index_bytes(tmp_path) == before
    assert _files(tmp_path) == files


def test_a_rotation_after_the_pending_key_activated_writes_the_switch_first(
    tmp_path: Path,
) -> None:
    first = load_or_create(tmp_path, now=T0).active
    second = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=100, now=T0)
    third = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=100, now=T0 + 100)
    statuses = {k["kid"]: k["status"] for k in json.loads(_index_bytes(tmp_path))["keys"]}
    assert statuses == {first.kid: "retired", second.kid: "active", third.kid: "pending"}


def test_settle_writes_down_a_due_activation(tmp_path: Path) -> None:
    load_or_create(tmp_path, now=T0)
    entry = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=100, now=T0)
    settle(tmp_path, passphrase=None, now=T0 + 99)
    assert json.loads(_index_bytes(tmp_path))["active"] != entry.kid
    settle(tmp_path, passphrase=None, now=T0 + 100)
    assert json.loads(_index_bytes(tmp_path))["active"] == entry.kid


def test_rotation_encrypts_the_new_key_with_the_passphrase(tmp_path: Path) -> None:
    secret = b"correct horse battery staple"
    old = load_or_create(tmp_path, passphrase=secret, now=T0).active
    entry = rotate(tmp_path, alg="EdDSA", passphrase=secret, publish_seconds=0, now=T0)
    assert "ENCRYPTED PRIVATE KEY" in (tmp_path / f"{entry.kid}.pem").read_text()
    ring = load_or_create(tmp_path, passphrase=secret, now=T0)
    assert ring.active.kid == entry.kid
    assert set(ring.keys) == {old.kid, entry.kid}
    for wrong in (None, b"wrong"):
        with pytest.raises(KeyRingError):
            load_or_create(tmp_path, passphrase=wrong)


@pytest.mark.parametrize("given", [None, b"wrong"])
def test_rotation_without_the_right_passphrase_writes_nothing(
    tmp_path: Path, given: bytes | None
) -> None:
    load_or_create(tmp_path, passphrase=b"right", now=T0)
    before, files = _index_bytes(tmp_path), _files(tmp_path)
    with pytest.raises(KeyRingError, match="wrong passphrase"):
        rotate(tmp_path, alg="ES256", passphrase=given, publish_seconds=0, now=T0)
    assert _index_bytes(tmp_path) == before
    assert _files(tmp_path) == files


# --- compromise revocation on disk ------------------------------------------------------------


def test_revoking_the_signing_key_activates_a_new_one_at_once(tmp_path: Path) -> None:
    old = load_or_create(tmp_path, now=T0).active
    result = revoke(tmp_path, old.kid, alg="EdDSA", passphrase=None, now=T0 + 5)
    assert result.revoked.status is KeyStatus.REVOKED
    assert result.revoked.revoked_at == T0 + 5
    assert result.generated
    assert result.replacement is not None
    assert result.replacement.alg == "EdDSA"
    ring = load_or_create(tmp_path, now=T0 + 5)
    assert ring.active.kid == result.replacement.kid != old.kid
    assert set(ring.keys) == {result.replacement.kid}
    assert ring.revoked == {old.kid}
    assert old.kid not in {k["kid"] for k in ring.jwks()["keys"]}


def test_revoking_the_signing_key_brings_a_pending_key_forward(tmp_path: Path) -> None:
    old = load_or_create(tmp_path, now=T0).active
    pending = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=DAY, now=T0)
    pems = set(tmp_path.glob("*.pem"))
    result = revoke(tmp_path, old.kid, alg="ES256", passphrase=None, now=T0 + 5)
    assert not result.generated
    assert result.replacement is not None
    assert result.replacement.kid == pending.kid
    assert set(tmp_path.glob("*.pem")) == pems  # already published: no new key needed
    ring = load_or_create(tmp_path, now=T0 + 5)
    assert ring.active.kid == pending.kid
    assert ring.next_change is None


@pytest.mark.parametrize("which", ["retired", "pending"])
def test_revoking_a_key_that_does_not_sign_leaves_the_signing_key(
    tmp_path: Path, which: str
) -> None:
    first = load_or_create(tmp_path, now=T0).active
    second = rotate(
        tmp_path,
        alg="ES256",
        passphrase=None,
        publish_seconds=DAY,
        activate_now=which == "retired",
        now=T0,
    )
    target = first.kid if which == "retired" else second.kid
    signing = load_or_create(tmp_path, now=T0).active.kid
    result = revoke(tmp_path, target, alg="ES256", passphrase=None, now=T0 + 5)
    assert result.replacement is None
    ring = load_or_create(tmp_path, now=T0 + 5)
    assert ring.active.kid == signing
    assert ring.revoked == {target}
    assert target not in ring.keys


def test_revoking_an_unknown_kid_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    load_or_create(tmp_path, now=T0)
    before, files = _index_bytes(tmp_path), _files(tmp_path)
    with pytest.raises(UnknownKid, match="no key with kid"):
        revoke(tmp_path, "A" * 43, alg="ES256", passphrase=None, now=T0)
    assert _index_bytes(tmp_path) == before
    assert _files(tmp_path) == files


def test_revoking_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    old = load_or_create(tmp_path, now=T0).active
    revoke(tmp_path, old.kid, alg="ES256", passphrase=None, now=T0)
    before, files = _index_bytes(tmp_path), _files(tmp_path)
    again = revoke(tmp_path, old.kid, alg="ES256", passphrase=None, now=T0 + 60)
    assert again.already
    assert again.revoked.revoked_at == T0
    assert _index_bytes(tmp_path) == before
    assert _files(tmp_path) == files


# --- verification: key_revoked ----------------------------------------------------------------


def test_a_revoked_key_fails_before_its_signature_is_checked() -> None:
    key = generate_signing_key("ES256")
    token = issue(key=key, holder_key=None)
    trust = trusted(key)
    assert run(token, trust=trust).failures == ()  # a good credential...
    revoked = {ISSUER: _with_revoked(trust[ISSUER], key.kid)}
    inspection = run(token, trust=revoked)
    assert [f.reason for f in inspection.failures] == [Reason.KEY_REVOKED]
    verdict = conclude(inspection, StatusValue.VALID)
    assert not verdict.valid
    assert verdict.claims is None
    # ...and a broken signature changes nothing: the key is refused before it is used.
    header, payload, _signature = token.rstrip("~").split(".")
    forged = f"{header}.{payload}.{'A' * 86}~"
    assert [f.reason for f in run(forged, trust=revoked).failures] == [Reason.KEY_REVOKED]
    assert MESSAGES[Reason.KEY_REVOKED] == inspection.failures[0].message


def test_revoking_one_key_leaves_the_others_trusted() -> None:
    keep, lose = generate_signing_key("ES256"), generate_signing_key("ES256")
    trust = {ISSUER: _with_revoked(trusted(keep, lose)[ISSUER], lose.kid)}
    assert run(issue(key=keep, holder_key=None), trust=trust).failures == ()


def _with_revoked(issuer: Any, kid: str) -> Any:
    from dataclasses import replace

    return replace(
        issuer,
        keys={k: v for k, v in issuer.keys.items() if k != kid},
        revoked_kids=frozenset({kid}),
    )


# --- a running server follows keys/ -----------------------------------------------------------


class Clock:
    def __init__(self, wall: float = T0, tick: float = 0.0) -> None:
        self.wall, self.tick = wall, tick

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.tick


def test_holder_reads_the_index_at_most_once_per_interval(tmp_path: Path) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, interval=1.0, clock=clock.time, monotonic=clock.monotonic)
    old = holder_.current()
    new = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=0, now=T0)
    clock.tick += 0.999
    assert holder_.current() is old  # not looked at yet: the request path stays cheap
    clock.tick += 0.001
    assert holder_.current().active.kid == new.kid
    assert holder_.current() is holder_.current()  # unchanged index: the same ring object


def test_unknown_kid_forces_an_early_rereading_at_most_five_times_a_second(
    tmp_path: Path,
) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, interval=3600.0, clock=clock.time, monotonic=clock.monotonic)
    old = holder_.current()
    new = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=0, now=T0)
    assert holder_.current() is old  # the periodic check is an hour away
    assert holder_.refresh_for_unknown_kid() is True
    assert holder_.current().active.kid == new.kid
    newer = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=0, now=T0)
    clock.tick += 0.1
    assert holder_.refresh_for_unknown_kid() is False  # too soon after the last forced read
    assert newer.kid not in holder_.current().keys
    clock.tick += 0.1
    assert holder_.refresh_for_unknown_kid() is True
    assert holder_.current().active.kid == newer.kid
    assert holder_.refresh_for_unknown_kid() is False  # nothing changed (and too soon)


def test_holder_switches_to_a_pending_key_on_time_without_a_file_change(tmp_path: Path) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, clock=clock.time, monotonic=clock.monotonic)
    old = holder_.current().active
    pending = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=30, now=T0)
    clock.tick += 1
    ring = holder_.current()
    assert (ring.active.kid, pending.kid in ring.keys) == (old.kid, True)
    index = _index_bytes(tmp_path)
    clock.wall, clock.tick = T0 + 30, clock.tick + 1
    assert holder_.current().active.kid == pending.kid
    assert _index_bytes(tmp_path) == index  # the server never writes the ring


def test_holder_keeps_verifying_but_stops_signing_when_the_index_goes_bad(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, clock=clock.time, monotonic=clock.monotonic)
    good = holder_.current()
    index = _index_bytes(tmp_path)
    (tmp_path / "keyring.json").write_text('{"active": "x", "keys": [}')
    clock.tick += 1
    with caplog.at_level("ERROR", logger="thiqa.keys"):
        ring = holder_.current()
        clock.tick += 1
        assert holder_.current() is ring
    # The bad index may revoke the key in use: it verifies what it did, and signs nothing.
    assert ring.keys == good.keys
    with pytest.raises(KeyRingUnavailable):
        _ = ring.active
    assert holder_.problem == "keyring.json cannot be parsed"
    assert len(caplog.records) == 1  # logged once per bad version, not once a second
    assert "signing stops" in caplog.records[0].getMessage()
    # Repaired: signs again; then changed by a command: followed again.
    (tmp_path / "keyring.json").write_bytes(index)
    clock.tick += 1
    assert holder_.current().active.kid == good.active.kid
    assert holder_.problem is None
    entry = rotate(tmp_path, alg="ES256", passphrase=None, publish_seconds=0, now=T0)
    clock.tick += 1
    assert holder_.current().active.kid == entry.kid


def _revoke_with_unreadable_replacement(keys_dir: Path, kid: str) -> str:
    """What ``thiqa keys revoke --compromised`` run as another user leaves behind: an index
    that revokes ``kid`` and names a new signing key whose file this process cannot load
    (here: encrypted with a passphrase it does not have, as a 0600 file of another owner is
    for a server that is not root). Returns the new key's kid."""
    stored = read_ring(keys_dir, None)
    new = generate_signing_key("ES256")
    write_private(keys_dir, new, b"a passphrase the server does not have")
    entries = [
        replace(e, status=KeyStatus.REVOKED, revoked_at=T0) if e.kid == kid else e
        for e in stored.entries
    ]
    entries.append(KeyEntry(new.kid, "ES256", KeyStatus.ACTIVE, created_at=T0, activate_after=T0))
    write_index(keys_dir, entries)
    return new.kid


def test_a_revocation_applies_even_when_the_replacement_key_cannot_be_loaded(
    tmp_path: Path,
) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, clock=clock.time, monotonic=clock.monotonic)
    compromised = holder_.current().active
    trust = LiveTrust({}, own=ISSUER, types=frozenset({VCT}), keys=holder_)
    token = issue(key=compromised, holder_key=None)
    assert run(token, trust=trust).failures == ()
    new_kid = _revoke_with_unreadable_replacement(tmp_path, compromised.kid)
    clock.tick += 1
    ring = holder_.current()
    # Applied from the index alone: not published, not trusted, named as revoked.
    assert compromised.kid in ring.revoked
    assert compromised.kid not in ring.keys
    assert ring.jwks() == {"keys": []}
    assert compromised.kid in trust[ISSUER].revoked_kids
    assert compromised.kid not in trust[ISSUER].keys
    assert [f.reason for f in run(token, trust=trust).failures] == [Reason.KEY_REVOKED]
    # The signing key cannot be loaded: nothing is signed, by the revoked key least of all.
    assert ring.active_kid == new_kid
    with pytest.raises(KeyRingUnavailable) as refused:
        _ = ring.active
    assert (refused.value.code, refused.value.status) == ("keyring_unavailable", 503)
    assert holder_.problem == "1 published key file(s) cannot be loaded"
    assert set(ring.unloadable) == {new_kid}


def test_a_key_file_made_readable_again_is_picked_up_without_an_index_change(
    tmp_path: Path,
) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, clock=clock.time, monotonic=clock.monotonic)
    compromised = holder_.current().active
    new_kid = _revoke_with_unreadable_replacement(tmp_path, compromised.kid)
    clock.tick += 1
    assert holder_.problem is not None
    index = _index_bytes(tmp_path)
    # The operator repairs the file (here: rewrites it unencrypted, as chown would repair
    # ownership); the index is untouched.
    key = serialization.load_pem_private_key(
        (tmp_path / f"{new_kid}.pem").read_bytes(), b"a passphrase the server does not have"
    )
    (tmp_path / f"{new_kid}.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    clock.tick += 1
    assert holder_.current().active.kid == new_kid
    assert holder_.problem is None
    assert _index_bytes(tmp_path) == index


def test_holder_decrypts_only_keys_it_has_not_seen(tmp_path: Path) -> None:
    secret = b"s3cret"
    clock = Clock()
    holder_ = KeyRingHolder(
        tmp_path, passphrase=secret, clock=clock.time, monotonic=clock.monotonic
    )
    first = holder_.current().active
    new = rotate(tmp_path, alg="ES256", passphrase=secret, publish_seconds=0, now=T0)
    clock.tick += 1
    ring = holder_.current()
    assert ring.active.kid == new.kid
    assert ring.keys[first.kid] is first  # reused, not read and decrypted again


def test_live_trust_follows_the_ring(tmp_path: Path) -> None:
    clock = Clock()
    holder_ = KeyRingHolder(tmp_path, clock=clock.time, monotonic=clock.monotonic)
    other = trusted(generate_signing_key("ES256"), issuer="https://other.example")
    trust = LiveTrust(other, own=ISSUER, types=frozenset({VCT}), keys=holder_)
    old = holder_.current().active
    token = issue(key=old, holder_key=None)
    assert run(token, trust=trust).failures == ()
    assert set(trust) == {ISSUER, "https://other.example"}
    revoke(tmp_path, old.kid, alg="ES256", passphrase=None)
    clock.tick += 1
    assert trust[ISSUER].revoked_kids == {old.kid}
    assert [f.reason for f in run(token, trust=trust).failures] == [Reason.KEY_REVOKED]
    assert trust["https://other.example"] is other["https://other.example"]


# --- end to end: thiqa keys in another process, a live server on real HTTP --------------------


def thiqa(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*THIQA, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    assert settings.redis_url is not None
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {
        **base,
        "THIQA_REDIS_URL": settings.redis_url.get_secret_value(),
        "THIQA_KEYS_DIR": str(settings.keys_dir),
        "THIQA_REDIS_PREFIX": settings.redis_prefix,
        # The same issuer as the server: a new key's certificate names this URL.
        "THIQA_PORT": str(settings.port),
        "COLUMNS": "200",
    }


@pytest.fixture
def client(server: BackgroundServer, settings: Settings) -> Iterator[httpx.Client]:
    key = add_client(settings, "keys-test", frozenset(Scope))
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as http:
        yield http


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``condition`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not true within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def header(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split("~")[0].split(".")[0]))


def published_kids(http: httpx.Client) -> set[str]:
    return {k["kid"] for k in http.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]}


def issue_one(http: httpx.Client, wallet: SigningKey) -> dict[str, Any]:
    claims = {
        "given_name": "Amina",
        "family_name": "El Idrissi",
        "birthdate": "1990-04-12",
        "national_id": "ZZ104233",
        "nationality": "MA",
    }
    response = http.post(
        "/v1/credentials", json={"claims": claims, "holder_jwk": public_jwk(wallet.key)}
    )
    assert response.status_code == 201, response.text
    return response.json()


def verify(http: httpx.Client, token: str, wallet: SigningKey) -> dict[str, Any]:
    presentation = holder.present(
        token,
        ("given_name",),
        holder_key=wallet,
        nonce="n-1",
        audience="https://app.example",
        now=int(time.time()),
    )
    response = http.post(
        "/v1/verify",
        json={"credential": presentation, "nonce": "n-1", "audience": "https://app.example"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def status_list_kid(http: httpx.Client, issued: dict[str, Any]) -> str:
    uri = issued["status"]["status_list"]["uri"]
    response = http.get(uri, headers={"Accept": "application/statuslist+jwt"})
    assert response.status_code == 200
    return header(response.text)["kid"]


def test_rotation_on_a_running_server(
    client: httpx.Client, settings: Settings, cli_env: dict[str, str]
) -> None:
    wallet = generate_signing_key("ES256")
    old_kid = load_or_create(settings.keys_dir).active.kid
    before = issue_one(client, wallet)
    assert header(before["credential"])["kid"] == old_kid

    rotated = thiqa(["keys", "rotate"], {**cli_env, "THIQA_KEY_PUBLISH_SECONDS": "5"})
    assert rotated.returncode == 0, rotated.stderr
    (new,) = [
        e for e in read_ring(settings.keys_dir, None).entries if e.status is KeyStatus.PENDING
    ]
    assert new.kid in rotated.stdout
    assert "Warning" not in rotated.stderr  # the audit entry was written

    # Published to the live server without a restart, but not signing yet.
    wait_for(lambda: new.kid in published_kids(client))
    waiting = issue_one(client, wallet)
    assert new.activate_after is not None
    assert time.time() < new.activate_after, "too slow to observe the pending state"
    assert header(waiting["credential"])["kid"] == old_kid
    assert status_list_kid(client, waiting) == old_kid

    # Once its time has come it signs, with no file change and no restart.
    wait_for(lambda: status_list_kid(client, waiting) == new.kid, timeout=8)
    after = issue_one(client, wallet)
    assert header(after["credential"])["kid"] == new.kid
    assert published_kids(client) == {old_kid, new.kid}
    for token in (before, waiting, after):  # the retired key's credentials still verify
        verdict = verify(client, token["credential"], wallet)
        assert verdict["valid"] is True, verdict
        assert verdict["errors"] == []


def test_compromise_revocation_on_a_running_server(
    client: httpx.Client,
    settings: Settings,
    cli_env: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    wallet = generate_signing_key("ES256")
    stolen = read_ring(settings.keys_dir, None).private  # what the attacker copied
    old_kid = load_or_create(settings.keys_dir).active.kid
    issued = issue_one(client, wallet)
    assert verify(client, issued["credential"], wallet)["valid"] is True

    revoked = thiqa(["keys", "revoke", "--compromised", "--", old_kid], cli_env)
    assert revoked.returncode == 0, revoked.stderr
    assert "key_revoked" in revoked.stdout
    assert "Warning" not in revoked.stderr
    new_kid = load_or_create(settings.keys_dir).active.kid
    assert new_kid != old_kid

    reloaded_in = wait_for(lambda: published_kids(client) == {new_kid})
    assert reloaded_in < 2.5  # within one check interval, plus the request itself

    # The credential it signed: refused for exactly that, and nothing disclosed.
    verdict = verify(client, issued["credential"], wallet)
    assert verdict["valid"] is False
    assert [e["code"] for e in verdict["errors"]] == ["key_revoked"]
    assert verdict["claims"] is None
    assert verdict["errors"][0]["message"] == MESSAGES[Reason.KEY_REVOKED]

    # The attacker's own credential, signed by the stolen key, pointing at a valid status
    # entry: refused the same way, and the status store is untouched.
    status_keys = f"{settings.redis_prefix}:{{sl:*"
    snapshot = {k: redis_client.dump(k) for k in redis_client.scan_iter(match=status_keys)}
    forged = credential.issue(
        CLAIMS,
        issuer=settings.issuer_url,
        vct=settings.national_id_vct,
        key=stolen[old_kid],
        status=credential.StatusReference(**issued["status"]["status_list"]),
        issued_at=int(time.time()),
        expires_at=int(time.time()) + DAY,
        holder_jwk=public_jwk(wallet.key),
    )
    verdict = verify(client, forged, wallet)
    assert [e["code"] for e in verdict["errors"]] == ["key_revoked"]
    assert (verdict["valid"], verdict["claims"]) == (False, None)
    assert {k: redis_client.dump(k) for k in redis_client.scan_iter(match=status_keys)} == snapshot

    # Issuance goes on with the new key, and its credentials verify.
    fresh = issue_one(client, wallet)
    assert header(fresh["credential"])["kid"] == new_kid
    assert verify(client, fresh["credential"], wallet)["valid"] is True

    # The status list is signed per request by the signing key: re-signed by the new key,
    # and it verifies with nothing but the published JWKS (PyJWT, not Thiqa's code).
    uri = issued["status"]["status_list"]["uri"]
    response = client.get(uri, headers={"Accept": "application/statuslist+jwt"})
    assert header(response.text)["kid"] == new_kid
    jwks = client.get("/.well-known/jwt-vc-issuer").json()["jwks"]
    key = pyjwt.PyJWKSet.from_dict(jwks)[new_kid]
    claims = pyjwt.decode(response.text, key=key.key, algorithms=[key.algorithm_name])
    assert claims["sub"] == uri
    with pytest.raises(KeyError):
        pyjwt.PyJWKSet.from_dict(jwks)[old_kid]

    # Both changes are in the audit trail, by kid.
    entries = redis_client.xrange(f"{settings.redis_prefix}:{{audit}}:stream")
    keyed = [(f[b"action"], f[b"kid"]) for _id, f in entries if b"kid" in f]
    assert (b"key.revoked", old_kid.encode()) in keyed
    assert (b"key.rotated", new_kid.encode()) in keyed


def test_a_revocation_whose_new_key_the_server_cannot_load_still_applies_and_stops_signing(
    client: httpx.Client, settings: Settings, redis_client: redis.Redis
) -> None:
    wallet = generate_signing_key("ES256")
    old_kid = load_or_create(settings.keys_dir).active.kid
    issued = issue_one(client, wallet)
    assert client.get("/ready").status_code == 200
    new_kid = _revoke_with_unreadable_replacement(settings.keys_dir, old_kid)

    # Applied within a check interval, from the index alone.
    wait_for(lambda: published_kids(client) == set())
    verdict = verify(client, issued["credential"], wallet)
    assert (verdict["valid"], [e["code"] for e in verdict["errors"]]) == (False, ["key_revoked"])

    # Nothing is signed: not a credential (and no status entry is taken), not a status list.
    before = sorted(redis_client.scan_iter(match=f"{settings.redis_prefix}:*"))
    claims = {
        "given_name": "Amina",
        "family_name": "El Idrissi",
        "birthdate": "1990-04-12",
        "national_id": "ZZ104233",
        "nationality": "MA",
    }
    refused = client.post("/v1/credentials", json={"claims": claims})
    assert (refused.status_code, refused.json()["code"]) == (503, "keyring_unavailable")
    uri = issued["status"]["status_list"]["uri"]
    listed = client.get(uri, headers={"Accept": "application/statuslist+jwt"})
    assert (listed.status_code, listed.json()["code"]) == (503, "keyring_unavailable")
    assert sorted(redis_client.scan_iter(match=f"{settings.redis_prefix}:*")) == before

    # Out of rotation, and visible to monitoring.
    ready = client.get("/ready")
    assert (ready.status_code, ready.json()["code"]) == (503, "keyring_unavailable")
    assert "thiqa_keyring_degraded 1.0" in client.get("/metrics").text
    assert new_kid not in published_kids(client)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the keys folder away")
def test_keys_commands_refuse_a_keys_folder_owned_by_another_user(
    keys_env: dict[str, str], tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    old_kid = load_or_create(keys_dir).active.kid
    nobody = pwd.getpwnam("nobody")
    for path in (keys_dir, *keys_dir.iterdir()):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    index, files = _index_bytes(keys_dir), _files(keys_dir)
    for args in (["keys", "revoke", "--compromised", "--", old_kid], ["keys", "rotate"]):
        result = thiqa(args, keys_env)  # as root, as with sudo
        assert result.returncode == 1, result.stdout
        assert "owned by nobody" in result.stderr
        assert "sudo -u nobody" in result.stderr
        assert _index_bytes(keys_dir) == index
        assert _files(keys_dir) == files


def test_every_server_process_follows_the_ring(settings: Settings, cli_env: dict[str, str]) -> None:
    # Two servers on one keys folder, as two workers of `thiqa serve --workers 2` are.
    # Workers of one server share its public URL, which their certificates name.
    second = settings.model_copy(update={"port": free_port(), "public_url": settings.issuer_url})
    with BackgroundServer(settings) as one, BackgroundServer(second) as two:
        clients = [httpx.Client(base_url=s.url, timeout=10) for s in (one, two)]
        try:
            old_kid = load_or_create(settings.keys_dir).active.kid
            result = thiqa(["keys", "revoke", "--compromised", "--", old_kid], cli_env)
            assert result.returncode == 0, result.stderr
            new_kid = load_or_create(settings.keys_dir).active.kid
            for http in clients:
                wait_for(lambda http=http: published_kids(http) == {new_kid})
        finally:
            for http in clients:
                http.close()


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def keys_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {
        **base,
        "THIQA_REDIS_URL": redis_url,
        "THIQA_KEYS_DIR": str(tmp_path / "keys"),
        "THIQA_REDIS_PREFIX": f"keys{os.getpid()}{time.monotonic_ns() % 100000}",
        "COLUMNS": "200",
    }


def test_revoke_without_compromised_is_refused_with_the_reason(
    keys_env: dict[str, str], tmp_path: Path
) -> None:
    kid = load_or_create(tmp_path / "keys").active.kid
    before = _index_bytes(tmp_path / "keys")
    result = thiqa(["keys", "revoke", "--", kid], keys_env)
    assert result.returncode == 2
    assert "only a compromised key is revoked" in result.stderr
    assert "--compromised" in result.stderr
    assert "thiqa keys rotate" in result.stderr
    assert _index_bytes(tmp_path / "keys") == before


def test_revoke_of_an_unknown_kid_is_a_clear_error(
    keys_env: dict[str, str], tmp_path: Path
) -> None:
    load_or_create(tmp_path / "keys")
    before, files = _index_bytes(tmp_path / "keys"), _files(tmp_path / "keys")
    result = thiqa(["keys", "revoke", "no-such-kid", "--compromised"], keys_env)
    assert result.returncode == 1
    assert "no key with kid no-such-kid" in result.stderr
    assert "Traceback" not in result.stderr
    assert _index_bytes(tmp_path / "keys") == before
    assert _files(tmp_path / "keys") == files


def _blocks(text: str) -> dict[str, dict[str, str]]:
    """``thiqa keys show``'s blocks: title line -> {field name: value}, up to the JWKS."""
    blocks: dict[str, dict[str, str]] = {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("Published"):
            break
        if line and not line.startswith(" "):
            fields = blocks.setdefault(line, {})
        elif line.strip():
            name, _, value = line.strip().partition("  ")
            fields[name] = value.strip()
    return blocks


def test_keys_show_lists_every_status_within_80_columns(
    keys_env: dict[str, str], tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    first = load_or_create(keys_dir).active.kid
    second = rotate(keys_dir, alg="ES256", passphrase=None, publish_seconds=0).kid
    third = rotate(keys_dir, alg="EdDSA", passphrase=None, publish_seconds=0).kid
    revoke(keys_dir, second, alg="ES256", passphrase=None)
    fourth = rotate(keys_dir, alg="ES256", passphrase=None, publish_seconds=DAY).kid
    env = {**keys_env, "COLUMNS": "80"}
    result = thiqa(["keys", "show"], env)
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    blocks = _blocks(result.stdout)
    assert {kid: fields["status"] for kid, fields in blocks.items() if kid != "Issuer"} == {
        first: "retired",
        second: "revoked",
        third: "active (signing)",
        fourth: "pending",
    }
    assert blocks[third]["alg"] == "EdDSA"
    assert "revoked" in blocks[second]
    assert "revoked" not in blocks[third]
    jwks = json.loads(result.stdout[result.stdout.index("{") :])
    assert {k["kid"] for k in jwks["keys"]} == {first, third, fourth}
    assert '"d"' not in result.stdout

    as_json = thiqa(["keys", "show", "--json"], env)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert {k["kid"]: (k["status"], k["signing"]) for k in document["keys"]} == {
        first: ("retired", False),
        second: ("revoked", False),
        third: ("active", True),
        fourth: ("pending", False),
    }
    assert {k["kid"] for k in document["jwks"]["keys"]} == {first, third, fourth}
    revoked = next(k for k in document["keys"] if k["kid"] == second)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", revoked["revoked_at"])
    assert '"d"' not in as_json.stdout
    assert "PRIVATE" not in as_json.stdout


def test_rotate_with_the_passphrase_and_activate_now(
    keys_env: dict[str, str], tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    env = {**keys_env, "THIQA_KEY_PASSPHRASE": "correct horse"}
    old = load_or_create(keys_dir, passphrase=b"correct horse").active.kid
    result = thiqa(["keys", "rotate", "--alg", "EdDSA", "--activate-now"], env)
    assert result.returncode == 0, result.stderr
    ring = load_or_create(keys_dir, passphrase=b"correct horse")
    assert ring.active.kid != old
    assert ring.active.alg == "EdDSA"
    assert ring.active.kid in result.stdout
    assert "ENCRYPTED PRIVATE KEY" in (keys_dir / f"{ring.active.kid}.pem").read_text()
    # Without the passphrase the ring does not open, and nothing is added to it.
    before = _files(keys_dir)
    refused = thiqa(["keys", "rotate"], keys_env)
    assert refused.returncode == 1
    assert "wrong passphrase" in refused.stderr
    assert _files(keys_dir) == before


def test_rotate_refuses_an_unknown_algorithm(keys_env: dict[str, str], tmp_path: Path) -> None:
    load_or_create(tmp_path / "keys")
    result = thiqa(["keys", "rotate", "--alg", "HS256"], keys_env)
    assert result.returncode == 2
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1
