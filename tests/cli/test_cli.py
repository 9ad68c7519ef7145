"""The ``thiqa`` command, run as a user runs it: a real process, real Redis, real HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.server import free_port
from service.keyring.keyring import load_or_create
from service.store.embedded import EmbeddedRedis

THIQA = [sys.executable, "-m", "service.cli"]
KEY = re.compile(r"thq_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*THIQA, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {
        **base,
        "THIQA_REDIS_URL": redis_url,
        "THIQA_KEYS_DIR": str(tmp_path / "keys"),
        "THIQA_REDIS_PREFIX": f"cli{os.getpid()}{time.monotonic_ns() % 100000}",
        "COLUMNS": "200",
    }


def test_help_lists_every_command(env: dict[str, str]) -> None:
    result = run(["--help"], env)
    assert result.returncode == 0
    for command in ("serve", "demo", "clients", "keys"):
        assert command in result.stdout
    for sub in (
        ["clients", "--help"],
        ["keys", "--help"],
        ["serve", "--help"],
        ["clients", "add", "--help"],
    ):
        assert run(sub, env).returncode == 0


def test_clients_add_list_revoke(env: dict[str, str]) -> None:
    added = run(["clients", "add", "tax-portal", "--scopes", "issue,verify"], env)
    assert added.returncode == 0, added.stderr
    keys = KEY.findall(added.stdout)
    assert len(keys) == 1
    listed = run(["clients", "list"], env)
    assert "tax-portal" in listed.stdout
    assert "issue, verify" in listed.stdout
    assert keys[0] not in listed.stdout
    again = run(["clients", "add", "tax-portal"], env)
    assert again.returncode == 1
    assert "client_exists" in again.stderr
    assert run(["clients", "revoke", "tax-portal"], env).returncode == 0
    assert "tax-portal" not in run(["clients", "list"], env).stdout
    missing = run(["clients", "revoke", "tax-portal"], env)
    assert missing.returncode == 1
    assert "client_not_found" in missing.stderr


@pytest.mark.parametrize("scopes", ["superuser", "", "issue,root"])
def test_clients_add_refuses_unknown_scopes(env: dict[str, str], scopes: str) -> None:
    result = run(["clients", "add", "x", "--scopes", scopes], env)
    assert result.returncode == 2
    assert "invalid_request" in result.stderr


def test_keys_show_prints_public_key_only(env: dict[str, str], tmp_path: Path) -> None:
    load_or_create(tmp_path / "keys")  # as `thiqa serve` does on its first start
    result = run(["keys", "show"], env)
    assert result.returncode == 0, result.stderr
    (pem,) = (tmp_path / "keys").glob("*.pem")
    assert pem.stat().st_mode & 0o777 == 0o600
    assert pem.stem in result.stdout
    assert '"d"' not in result.stdout
    assert "PRIVATE" not in result.stdout


def test_invalid_setting_is_reported(env: dict[str, str]) -> None:
    result = run(["keys", "show"], {**env, "THIQA_PORT": "not-a-port"})
    assert result.returncode == 2
    assert "Invalid settings" in result.stderr


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("thiqa serve did not become ready")


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {
        **base,
        "THIQA_DATA_DIR": str(tmp_path / "var"),
        "THIQA_KEYS_DIR": str(tmp_path / "keys"),
        "THIQA_PORT": str(free_port()),
        "COLUMNS": "200",
        "THIQA_STATUS_LIST_SIZE": "4096",
    }


@pytest.fixture
def serve(embedded_env: dict[str, str]) -> Iterator[Any]:
    processes: list[subprocess.Popen] = []

    def start() -> str:
        process = subprocess.Popen(
            [*THIQA, "serve"],
            env=embedded_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{embedded_env['THIQA_PORT']}"
        _wait_ready(url, process)
        return url

    def stop() -> None:
        process = processes[-1]
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)

    start.stop = stop  # type: ignore[attr-defined]
    start.processes = processes  # type: ignore[attr-defined]
    yield start
    for process in processes:
        if process.poll() is None:
            # SIGTERM first: SIGKILL would leave the redis-server serve started running.
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def test_serve_without_redis_url_runs_a_durable_embedded_redis(
    serve, embedded_env: dict[str, str], tmp_path: Path
) -> None:
    url = serve()
    # A second command finds the server's embedded Redis through its socket.
    added = run(["clients", "add", "registry", "--scopes", "issue,revoke"], embedded_env)
    assert added.returncode == 0, added.stderr
    (key,) = KEY.findall(added.stdout)
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    issued = http.post(
        "/v1/credentials",
        json={
            "claims": {
                "given_name": "Idir",
                "family_name": "Amellal",
                "birthdate": "1985-03-02",
                "national_id": "ZY3051962",
            }
        },
    )
    assert issued.status_code == 201, issued.text
    cid = issued.json()["credential_id"]
    assert http.post(f"/v1/credentials/{cid}/revoke").status_code == 200
    http.close()
    serve.stop()

    redis_dir = tmp_path / "var" / "redis"
    assert any(redis_dir.rglob("*.aof")), "append-only file expected"
    assert EmbeddedRedis.running_at(tmp_path / "var") is None, "serve stops its Redis on exit"

    url = serve()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        assert http.get(f"/v1/credentials/{cid}").json()["status"] == "revoked"


def test_misspelled_setting_is_refused(env: dict[str, str]) -> None:
    result = run(["keys", "show"], {**env, "THIQA_REDIS_URLL": "redis://x"})
    assert result.returncode == 2
    assert "THIQA_REDIS_URLL" in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "thiqa.internal"])  # noqa: S104
def test_serve_refuses_a_reachable_listener_without_public_url(
    embedded_env: dict[str, str], tmp_path: Path, host: str
) -> None:
    result = run(["serve"], {**embedded_env, "THIQA_HOST": host})
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"Refused: listening on {host}, which other machines can reach, needs " in message
    assert "THIQA_PUBLIC_URL" in message
    # Refused before anything happened: no key, no Redis data.
    assert not (tmp_path / "keys").exists()
    assert not (tmp_path / "var").exists()


def test_serve_prints_where_the_docs_and_demo_are(serve, embedded_env: dict[str, str]) -> None:
    url = serve()
    serve.stop()
    # stdout of the stopped process: the addresses a newcomer opens next.
    (process_out,) = [line for line in _serve_output(serve) if "API documentation" in line]
    assert process_out.strip() == f"API documentation: {url}/docs"
    assert f"Browser demo: {url}/demo" in "\n".join(_serve_output(serve))


def _serve_output(serve: Any) -> list[str]:
    process = serve.processes[-1]
    if not hasattr(process, "captured"):
        process.captured = process.stdout.read().splitlines() if process.stdout else []
    return process.captured


def test_pki_init_and_keys_show_give_certificate_expiry(env: dict[str, str]) -> None:
    made = run(["pki", "init"], env)
    assert made.returncode == 0, made.stderr
    shown = run(["keys", "show", "--json"], env)
    assert shown.returncode == 0, shown.stderr
    import json

    (key,) = json.loads(shown.stdout)["keys"]
    assert key["certificate_expires_at"] is not None
    listed = run(["pki", "show"], env)
    assert listed.returncode == 0, listed.stderr
    assert "development root" in listed.stdout
    assert "relying-party access" in listed.stdout
    again = run(["pki", "init"], env)
    assert again.returncode == 1
    assert "exists" in again.stderr


def test_pki_import_issuer_refuses_a_chain_from_another_root(
    env: dict[str, str], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from service.keyring.certificates import make_root

    kid = load_or_create(tmp_path / "keys").active.kid  # as `thiqa serve` makes it
    root, _ = make_root("National root", now=int(time.time()))
    stranger, _ = make_root("Somebody", now=int(time.time()))
    (tmp_path / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(stranger.public_bytes(Encoding.PEM))
    result = run(
        [
            "pki",
            "import-issuer",
            kid,
            str(tmp_path / "chain.pem"),
            "--root",
            str(tmp_path / "root.pem"),
        ],
        env,
    )
    assert result.returncode == 1
    assert "certifies another key" in result.stderr
    assert not (tmp_path / "keys" / "pki" / "issuer").exists()
