"""The README tells the truth: its Configuration table is exactly the settings Thiqa has, with
their defaults, and its code tables are exactly the errors of ``service/errors.py`` and the
verdict reasons of ``service/core/reasons.py``, in both directions.

A setting added without a README row, a default changed in one place only, a new error code
nobody documented or a documented code that no longer exists fails here, before a newcomer or
an integrator meets it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from service.core.reasons import Reason
from service.errors import BodyStyle, DirectPostError, OAuthError, wire_errors
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Defaults the README states in words because they are derived, not a fixed value.
DERIVED = {"public_url": "http://HOST:PORT"}


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows[1:]  # the header


def _readme_settings() -> dict[str, str]:
    """Setting name -> default as written, from the Configuration table. A row may name
    several variables with as many defaults (`THIQA_HOST`, `THIQA_PORT`)."""
    found: dict[str, str] = {}
    for variables, default, _meaning in _table_rows(_section("Configuration")):
        names = re.findall(r"`THIQA_([A-Z0-9_]+)`", variables)
        values = re.findall(r"`([^`]*)`", default) or [default]
        assert len(values) == len(names), f"one default per variable: {variables}"
        for name, value in zip(names, values, strict=True):
            assert name.lower() not in found, f"THIQA_{name} is in the table twice"
            found[name.lower()] = value
    return found


def _as_written(name: str, value: Any) -> str:
    """A default as the README writes it."""
    if name in DERIVED:
        return DERIVED[name]
    if value is None or isinstance(value, SecretStr):
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return f"./{value}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_configuration_table_lists_every_setting_and_nothing_else() -> None:
    documented = set(_readme_settings())
    fields = set(Settings.model_fields)
    assert documented - fields == set(), "the README names settings Thiqa does not have"
    assert fields - documented == set(), "settings missing from the README's Configuration"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_the_configuration_table_states_each_default(name: str) -> None:
    written = _readme_settings().get(name)
    assert written == _as_written(name, Settings.model_fields[name].default), (
        f"THIQA_{name.upper()}"
    )


def _coded_table(first_header: str) -> list[list[str]]:
    """The rows of the README table whose header starts with ``first_header``."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([a-z][a-z0-9_]*)`", cell)
    assert match, f"one code per cell: {cell}"
    return match.group(1)


def test_the_problem_code_table_is_exactly_the_problem_errors() -> None:
    documented = [(_code(code), int(status)) for code, status, _ in _coded_table("problem code")]
    real = [(cls.code, cls.status) for cls in wire_errors() if cls.style is BodyStyle.PROBLEM]
    assert len(documented) == len(set(documented)), "a problem code is in the table twice"
    assert set(documented) - set(real) == set(), "documented problem codes Thiqa never answers"
    assert set(real) - set(documented) == set(), "problem codes missing from the README"


def test_the_oauth_code_table_is_exactly_the_oauth_errors() -> None:
    documented = [
        (_code(code), _code(error), int(status))
        for code, error, status, _endpoint, _ in _coded_table("OAuth code")
    ]
    real = [
        (cls.code, cls.error or cls.code, cls.status)
        for cls in wire_errors()
        if issubclass(cls, OAuthError)
    ]
    assert len(documented) == len(set(documented)), "an OAuth code is in the table twice"
    assert set(documented) - set(real) == set(), "documented OAuth codes Thiqa never answers"
    assert set(real) - set(documented) == set(), "OAuth codes missing from the README"


def test_the_verdict_code_table_is_exactly_the_reasons() -> None:
    documented = [
        code
        for cell, _meaning in _coded_table("verdict code")
        for code in re.findall(r"`([a-z][a-z0-9_]*)`", cell)
    ]
    assert len(documented) == len(set(documented)), "a verdict code is in the table twice"
    assert set(documented) == {reason.value for reason in Reason}


def test_the_tables_are_read() -> None:
    """Guards the table reader itself: each table has rows of each kind it must hold."""
    problems = {_code(row[0]) for row in _coded_table("problem code")}
    assert {"invalid_json", "offer_not_found", "status_unavailable"} <= problems
    oauth = {_code(row[0]) for row in _coded_table("OAuth code")}
    assert {"invalid_token", "nonce_replayed", "unsupported_grant_type"} <= oauth
    verdicts = " ".join(row[0] for row in _coded_table("verdict code"))
    assert "`too_large`" in verdicts
    assert "`wallet_error`" in verdicts


def test_the_presentation_response_table_is_exactly_the_direct_post_errors() -> None:
    """The OpenID4VP section's own table (with whether the request is spent) says the same
    as the classes of the response endpoint."""
    documented = [
        (_code(code), int(status))
        for code, status, _meaning, _spent in _coded_table("`code`")
        if code.startswith("`")  # the first row is the accepted answer, with no code
    ]
    real = [(cls.code, cls.status) for cls in wire_errors() if issubclass(cls, DirectPostError)]
    assert sorted(documented) == sorted(real)


def _layer_folders() -> set[str]:
    return {
        f"service/{path.name}/"
        for path in (ROOT / "service").iterdir()
        if (path / "__init__.py").is_file()
    }


def test_the_layout_names_every_layer_folder() -> None:
    layout = _section("Layout")
    folders = _layer_folders()
    assert {"service/core/", "service/store/", "service/cli/"} <= folders  # the scan works
    assert sorted(f for f in folders if f not in layout) == []
