"""``thiqa`` as a newcomer meets it: help that reads well, clear refusals with the documented
exit statuses (README: 1 the operation failed, 2 a usage or configuration error), no
traceback, and no secret on the screen. Real processes, as a user runs them."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.api.server import free_port
from service.core.encoding import b64url_encode
from service.logs import JsonFormatter
from service.store.embedded import EmbeddedRedis
from service.wallet.store import Wallet

THIQA = [sys.executable, "-m", "service.cli"]


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*THIQA, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    return {
        **base,
        "COLUMNS": "100",
        "PYTHONIOENCODING": "utf-8",
        "THIQA_KEYS_DIR": str(tmp_path / "keys"),
        "THIQA_DATA_DIR": str(tmp_path / "var"),
    }


def test_help_is_named_thiqa_and_reads_as_sentences(env: dict[str, str]) -> None:
    top = run(["--help"], env)
    assert top.returncode == 0
    assert "Usage: thiqa " in top.stdout  # not "python -m service.cli"
    rotate = " ".join(run(["keys", "rotate", "--help"], env).stdout.split())
    # A docstring's own line breaks are not kept: the paragraph is reflowed to the terminal.
    assert (
        "signs after THIQA_KEY_PUBLISH_SECONDS (a day by default), so verifiers that "
        "cache the JWKS learn it first"
    ) in rotate
    for command in (
        ["serve"],
        ["demo"],
        ["clients", "add"],
        ["clients", "list"],
        ["clients", "revoke"],
        ["keys", "show"],
        ["keys", "revoke"],
        ["audit", "tail"],
        ["wallet", "accept"],
        ["wallet", "list"],
        ["wallet", "show"],
        ["wallet", "status"],
        ["wallet", "present"],
    ):
        shown = run([*command, "--help"], env)
        assert shown.returncode == 0, command
        assert f"Usage: thiqa {' '.join(command)}" in shown.stdout, command


def test_an_invalid_setting_names_the_variable_never_its_value(env: dict[str, str]) -> None:
    result = run(["keys", "show"], {**env, "THIQA_PUBLIC_URL": "ftp://user:s3cret@host"})
    assert result.returncode == 2
    assert "Invalid settings" in result.stderr
    assert "THIQA_PUBLIC_URL" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_no_redis_server_is_a_message_not_a_traceback(env: dict[str, str]) -> None:
    result = run(["clients", "add", "x"], {**env, "THIQA_REDIS_SERVER_BIN": "/nonexistent"})
    assert result.returncode == 1
    assert "Redis:" in result.stderr
    assert "THIQA_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "╭" not in result.stderr  # no framed traceback either


def test_demo_refuses_a_citizen_that_does_not_exist(env: dict[str, str]) -> None:
    result = run(["demo", "--citizen", "999"], env, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2
    assert "--citizen" in result.stderr
    assert "0 to 23" in result.stderr
    assert "Traceback" not in result.stderr


def _wallet_with_one_credential(path: Path) -> str:
    wallet = Wallet.open(path)
    header = b64url_encode(json.dumps({"alg": "ES256", "typ": "dc+sd-jwt"}).encode())
    payload = b64url_encode(
        json.dumps(
            {
                "iss": "https://a-very-long-issuer-name.example.org/with/a/path",
                "vct": "https://a-very-long-issuer-name.example.org/types/national-identity",
                "exp": 1_900_000_000,
            }
        ).encode()
    )
    stored = wallet.add(f"{header}.{payload}.c2ln~", wallet.new_key())
    wallet.save()
    return stored.id


def test_wallet_list_never_cuts_the_id_a_tester_types_next(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "wallet.json"
    credential_id = _wallet_with_one_credential(path)
    listed = run(["wallet", "list", "--wallet", str(path)], {**env, "COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    assert credential_id in listed.stdout


@pytest.mark.parametrize("entry", [{"credential": "garbage"}, {"key_id": "no-such-key"}])
def test_a_hand_edited_wallet_is_one_clear_line_not_a_traceback(
    env: dict[str, str], tmp_path: Path, entry: dict[str, str]
) -> None:
    path = tmp_path / "wallet.json"
    credential_id = _wallet_with_one_credential(path)
    document = json.loads(path.read_text("utf-8"))
    document["credentials"][0].update(entry)
    path.write_text(json.dumps(document), "utf-8")
    for command in (["wallet", "list"], ["wallet", "show", credential_id]):
        result = run([*command, "--wallet", str(path)], env)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert f"credential {credential_id}" in line
        assert result.stdout == ""


def test_wallet_show_refuses_an_unknown_language(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    credential_id = _wallet_with_one_credential(path)
    result = run(["wallet", "show", credential_id, "--lang", "de", "--wallet", str(path)], env)
    assert result.returncode == 2
    assert "--lang" in result.stderr
    assert "'de'" in result.stderr


def test_json_log_lines_carry_no_terminal_colour_codes() -> None:
    """uvicorn adds ``color_message`` (the message with ANSI escapes) to its records."""
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None
    )
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Started server process [42]"
    assert "color_message" not in line
    assert line["status"] == 200  # other extras still come through


def test_sigterm_stops_serve_and_its_embedded_redis(env: dict[str, str], tmp_path: Path) -> None:
    """`docker stop` and `systemctl stop` send SIGTERM: the server shuts down cleanly, exits 0
    and stops the redis-server it started (README: "stops it on exit"), as Ctrl-C does."""
    port = free_port()
    process = subprocess.Popen(
        [*THIQA, "serve"],
        env={**env, "THIQA_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "thiqa serve did not become ready"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert EmbeddedRedis.running_at(tmp_path / "var") is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert EmbeddedRedis.running_at(tmp_path / "var") is None, "redis-server outlived serve"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
