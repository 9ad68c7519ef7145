"""The synthetic citizens of ``seeds/citizens.json``: the demo issues to them, and the /demo
page offers them to its issuer console. Never real people: the file says so itself.

An installed Thiqa carries them as package data (``service/seeds/``, copied from ``seeds/`` by
the build, setup.py); a checkout, an editable install included, reads ``seeds/`` itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["find_seeds", "load_citizens"]

_PACKAGE = Path(__file__).resolve().parents[1]  # service/


def find_seeds() -> Path:
    for candidate in (
        _PACKAGE / "seeds" / "citizens.json",  # installed from a wheel or sdist
        _PACKAGE.parent / "seeds" / "citizens.json",  # the checkout
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "the synthetic citizens (citizens.json) are missing from this installation: "
        "reinstall Thiqa (pip install .) or run from its checkout"
    )


def load_citizens(path: Path | None = None) -> list[dict[str, Any]]:
    data = json.loads((path or find_seeds()).read_text(encoding="utf-8"))
    citizens: list[dict[str, Any]] = data["citizens"]
    return citizens
