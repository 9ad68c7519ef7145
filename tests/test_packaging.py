"""Thiqa installed from its package, not run from the checkout: the synthetic citizens ship as
package data, and the image's lock file pins every runtime dependency with hashes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIP = (sys.executable, "-m", "pip")


def _name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def _locked() -> dict[str, list[str]]:
    """Each locked package with its hashes."""
    locked: dict[str, list[str]] = {}
    current = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        pin = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line)
        if pin:
            current = _name(pin.group(1))
            locked[current] = []
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            locked[current].append(digest)
    return locked


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = {_name(req) for req in project["project"]["dependencies"]}
    wanted |= {_name(req) for req in project["build-system"]["requires"]}
    locked = _locked()
    assert wanted <= set(locked), wanted - set(locked)
    assert all(locked.values()), [name for name, hashes in locked.items() if not hashes]
    # The [standard] extra of uvicorn came along: the faster loop and HTTP parser.
    assert {"uvloop", "httptools"} <= set(locked)
    # Nothing only the tests need.
    assert not {"pytest", "playwright", "schemathesis", "ruff"} & set(locked)


def _build_wheel(destination: Path) -> Path:
    # From a copy of what the sdist holds, so the checkout gets no build/ or egg-info.
    source = destination / "src"
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "seeds", source / "seeds")
    shutil.copytree(ROOT / "service", source / "service", ignore=shutil.ignore_patterns("*.pyc"))
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(destination), source],
        check=True,
        capture_output=True,
    )
    (wheel,) = destination.glob("thiqa-*.whl")
    return wheel


@pytest.mark.slow
def test_an_installed_thiqa_runs_the_demo_from_another_folder(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"service/seeds/citizens.json", "service/seeds/README.md"} <= names
    # The documentation pages' own files, beside the demo's (the bundles come from a package).
    assert {
        "service/web/docs/swagger.html",
        "service/web/docs/redoc.html",
        "service/web/docs/swagger-init.js",
        "service/web/demo/demo.js",
    } <= names
    assert (
        archive_bytes(wheel, "service/seeds/citizens.json")
        == (ROOT / "seeds" / "citizens.json").read_bytes()
    )
    # Installed on its own (its dependencies are this environment's), first on the path: the
    # checkout's service/ and seeds/ are nowhere in sight of the process.
    site = tmp_path / "site"
    subprocess.run(
        [*PIP, "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    env |= {"PYTHONPATH": str(site), "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"}
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from service.services.seeds import find_seeds; print(find_seeds())",
        ],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == site / "service" / "seeds" / "citizens.json"
    demo = subprocess.run(
        [sys.executable, "-m", "service.cli", "demo", "--citizen", "2"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Every step behaved as expected." in demo.stdout
    assert list(elsewhere.iterdir()) == []


def archive_bytes(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name)
