"""``thiqa demo`` as the README tells a newcomer to run it: no Redis given, nothing set up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_walks_the_flow_and_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--citizen", "0"],
        env={**env, "COLUMNS": "120"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Every step behaved as expected." in out
    assert "✘" not in out
    for expected in (
        "wrong PIN refused",
        "the issuing app sees the offer redeemed",
        "the credential is valid",
        "the birth date was dropped",
        "rejected: nonce_replayed",
        "the next presentation says suspended",
        "valid again",
        "the very next presentation says revoked",
        "rejected: invalid_disclosure",
        "rejected: invalid_signature",
        "a revoked credential cannot be reinstated",
        "the mdoc is valid",
        "the DeviceResponse held exactly the requested elements",
        "after revocation the mdoc says revoked",
    ):
        assert expected in out
    # Names appear in both scripts.
    assert "أمينة" in out
    assert "الإدريسي" in out
    assert list(tmp_path.iterdir()) == [], "the demo leaves nothing behind in the working folder"
    # The steps read alone: no server log line between them, no Python None in a verdict.
    assert result.stderr == ""
    assert "None" not in out
    assert "not checked" in out  # step 10: the forged token fails before the status check


def test_demo_keeps_the_server_log_apart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    kept = tmp_path / "kept"
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--citizen", "1", "--keep", str(kept)],
        env={**env, "COLUMNS": "120"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    log = kept / "data" / "server.log"
    assert f"The server's log is in {log}" in " ".join(result.stdout.split())
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    # The wrong PIN of step 3 is logged there, as JSON, and nowhere on the terminal.
    assert any("wrong transaction code" in line["message"] for line in lines)
