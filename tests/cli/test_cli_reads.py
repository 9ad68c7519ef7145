"""Commands that only read change nothing and say what they read: ``keys show`` creates no
key, ``clients list`` and ``audit tail`` name their store and refuse to start an empty one;
``clients add --json`` is for scripts; help shows no type after flags."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli.redis_access import describe_redis_url
from service.keyring.keyring import load_or_create

THIQA = [sys.executable, "-m", "service.cli"]
KEY = re.compile(r"thq_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*THIQA, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {
        **base,
        "COLUMNS": "200",
        "THIQA_KEYS_DIR": str(tmp_path / "keys"),
        "THIQA_DATA_DIR": str(tmp_path / "data"),
    }


def test_keys_show_on_an_empty_folder_creates_no_key(env: dict[str, str], tmp_path: Path) -> None:
    for args in (["keys", "show"], ["keys", "show", "--json"]):
        result = run(args, env)
        assert result.returncode == 1
        assert "no issuer keys in" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "keys").exists(), "a read command created the keys folder"


def test_keys_show_reads_an_existing_ring_unchanged(env: dict[str, str], tmp_path: Path) -> None:
    ring = load_or_create(tmp_path / "keys")
    before = {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()}
    result = run(["keys", "show", "--json"], env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [key["kid"] for key in document["keys"]] == [ring.active.kid]
    assert {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()} == before


@pytest.mark.parametrize(
    ("args", "what"), [(["clients", "list"], "clients"), (["audit", "tail"], "audit")]
)
def test_read_commands_refuse_to_invent_an_empty_store(
    env: dict[str, str], tmp_path: Path, args: list[str], what: str
) -> None:
    result = run(args, env)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert f"No store: no Thiqa server is running on {tmp_path / 'data'}" in message
    assert "THIQA_DATA_DIR" in message
    assert "No clients yet" not in result.stdout
    assert not (tmp_path / "data").exists(), "a read command started a Redis of its own"


def test_clients_add_json_then_list_names_its_store(env: dict[str, str], tmp_path: Path) -> None:
    added = run(["clients", "add", "tax-portal", "--scopes", "verify,issue", "--json"], env)
    assert added.returncode == 0, added.stderr
    document = json.loads(added.stdout)
    assert set(document) == {"name", "scopes", "api_key"}
    assert document["name"] == "tax-portal"
    assert document["scopes"] == ["issue", "verify"]
    assert KEY.fullmatch(document["api_key"])
    # No server runs, but `clients add` wrote to the data folder: list reads that data.
    listed = run(["clients", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "tax-portal" in listed.stdout
    where = " ".join(listed.stderr.split())
    assert f"Reading clients from the Redis data in {tmp_path / 'data'} (no server running)" in (
        where
    )
    tail = run(["audit", "tail", "--json"], env)
    assert tail.returncode == 0, tail.stderr
    assert [json.loads(line)["action"] for line in tail.stdout.splitlines()] == ["client.added"]
    assert "Reading the audit trail from" in tail.stderr


def test_a_configured_redis_is_named_without_its_password(
    env: dict[str, str], redis_url: str
) -> None:
    result = run(["clients", "list"], {**env, "THIQA_REDIS_URL": redis_url})
    assert result.returncode == 0, result.stderr
    assert "(THIQA_REDIS_URL)" in result.stderr
    assert "Reading clients from" in result.stderr
    # A password in the URL never reaches the terminal.
    assert describe_redis_url("redis://user:s3cret@redis:6379/0") == "redis://redis:6379/0"


def test_help_shows_no_type_after_flags(env: dict[str, str]) -> None:
    for command in (["keys", "show"], ["clients", "add"], ["audit", "tail"], ["wallet", "list"]):
        shown = run([*command, "--help"], env)
        assert shown.returncode == 0
        assert "<bool>" not in shown.stdout, command
        assert "--help" in shown.stdout
