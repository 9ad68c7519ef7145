"""The synthetic citizens of ``seeds/citizens.json``: the demo issues to them, and the /demo
page offers them to its issuer console. Never real people: the file says so itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["find_seeds", "load_citizens"]


def find_seeds() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "seeds" / "citizens.json"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("seeds/citizens.json not found (run from the Thiqa checkout)")


def load_citizens(path: Path | None = None) -> list[dict[str, Any]]:
    data = json.loads((path or find_seeds()).read_text(encoding="utf-8"))
    citizens: list[dict[str, Any]] = data["citizens"]
    return citizens
