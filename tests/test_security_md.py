"""SECURITY.md names, for every threat, the tests that would fail if its defence were removed.
Those tests must exist: a renamed or deleted test would otherwise leave a defence that the
page says is proven, and is not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECURITY = (ROOT / "SECURITY.md").read_text(encoding="utf-8")


def references() -> list[str]:
    """Every test reference, ``::name`` shorthands completed with the file named before them
    (``tests/a.py::test_x``, ``::test_y`` means ``tests/a.py::test_y``)."""
    found: list[str] = []
    current = None
    for match in re.finditer(r"`((?:tests/[^`]+)|(?:::\w+))`", SECURITY):
        text = match.group(1)
        if text.startswith("::"):
            assert current is not None, f"{text} follows no test file"
            found.append(current + text)
        else:
            current = text.split("::", 1)[0]
            found.append(text)
    return found


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_the_page_names_tests() -> None:
    assert len(references()) >= 40


@pytest.mark.parametrize("reference", sorted(set(references())))
def test_each_named_test_exists(reference: str) -> None:
    where, _, function = reference.partition("::")
    matches = sorted(ROOT.glob(where)) if "*" in where else [ROOT / where]
    assert matches, f"{where} matches nothing"
    assert all(m.exists() for m in matches), f"{where} does not exist"
    if where.endswith("/"):
        assert any(path.name.startswith("test_") for path in matches[0].glob("*.py")), where
    if function:
        assert function in _test_functions(matches[0]), f"{where} has no {function}"
