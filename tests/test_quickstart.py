"""The README's quickstart, run as written: its ``sh`` blocks in one bash session against a
live Thiqa, each answer compared with the ``json`` block the README shows after it: the same
members, nested the same way, with the same verdicts, statuses and codes (ids, times and
signatures differ on every run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.api.server import BackgroundServer
from service.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
#: Members whose values the README's outputs promise, not just their presence.
STABLE = frozenset(
    {"valid", "credential_status", "format", "status", "key_bound", "code", "message"}
)
_SEPARATOR = "@@ next block @@"


def quickstart_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block of the quickstart section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quickstart with curl\n", 1)[1].split("\n## ", 1)[0]
    return [
        (m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)```", section, re.DOTALL)
    ]


def shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    if key in STABLE:
        return value
    return type(value).__name__


def test_the_quickstart_is_commands_then_outputs() -> None:
    blocks = quickstart_blocks()
    languages = [language for language, _ in blocks]
    assert languages == ["sh"] + ["sh", "json"] * 4
    for language, text in blocks:
        if language == "json":
            json.loads(text)  # every output shown is real JSON


@pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"),
    reason="the quickstart needs curl (apt-get install curl); CI always runs this",
)
def test_the_quickstart_runs_as_written(
    server: BackgroundServer, settings: Settings, tmp_path: Path
) -> None:
    blocks = quickstart_blocks()
    setup, steps = blocks[0][1], blocks[1:]
    assert "THIQA=http://127.0.0.1:8000\n" in setup
    # The live server's address; the `thiqa` of this environment (run.py would set up .venv).
    setup = setup.replace("THIQA=http://127.0.0.1:8000", f"THIQA={server.url}")
    setup = setup.replace("python3 run.py thiqa", f"{sys.executable} -m service.cli")
    commands = [text for language, text in steps if language == "sh"]
    shown = [json.loads(text) for language, text in steps if language == "json"]
    script = (
        "set -euo pipefail\n"
        + setup
        + "".join(f"echo '{_SEPARATOR}'\n{command}\n" for command in commands)
    )
    assert settings.redis_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    # The CLI reaches the server's store, as with a shared THIQA_DATA_DIR.
    env |= {
        "THIQA_REDIS_URL": settings.redis_url.get_secret_value(),
        "THIQA_REDIS_PREFIX": settings.redis_prefix,
        "THIQA_KEYS_DIR": str(settings.keys_dir),
    }
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(part) for part in result.stdout.split(_SEPARATOR + "\n")[1:]]
    assert len(outputs) == len(shown) == 4
    for actual, documented in zip(outputs, shown, strict=True):
        assert shape(actual) == shape(documented)
    assert outputs[1]["valid"] is True
    assert [e["code"] for e in outputs[3]["errors"]] == ["revoked"]
