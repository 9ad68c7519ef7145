"""The README tells the truth: its Configuration table is exactly the settings Thiqa has, with
their defaults, and every error code the service can answer is explained there.

A setting added without a README row, a default changed in one place only, or a new error code
nobody documented fails here, before a newcomer or an integrator meets it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import service.api.app  # noqa: F401 - loads every module that defines an error
from service.api.problems import _HTTP_CODES
from service.core.reasons import Reason
from service.errors import ThiqaError
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


def _every_error_class(base: type[ThiqaError]) -> list[type[ThiqaError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _every_error_class(sub)
    return found


def _service_sources() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(encoding="utf-8"))
        for path in (ROOT / "service").rglob("*.py")
    }


def _called_names(trees: dict[Path, ast.Module]) -> set[str]:
    names = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def _string_args(
    trees: dict[Path, ast.Module], callee: str, position: int, only: str | None = None
) -> set[str]:
    """Literal strings passed at ``position`` to calls of ``callee`` in service/ (or only in
    the module ``only``, when the name means something else elsewhere)."""
    found = set()
    for path, tree in trees.items():
        if only is not None and path != ROOT / only:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == callee and len(node.args) > position:
                arg = node.args[position]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def emitted_codes() -> set[str]:
    """Every stable code an HTTP answer can carry: problem details, verdict reasons and the
    OAuth-style errors of the OpenID4VCI and OpenID4VP wallet endpoints."""
    trees = _service_sources()
    called = _called_names(trees)
    codes = set()
    for cls in _every_error_class(ThiqaError):
        # A class only ever subclassed (a grouping such as Conflict) answers nothing itself.
        if cls.__name__ in called or not cls.__subclasses__() or cls is ThiqaError:
            codes.add(cls.code)
    codes |= {reason.value for reason in Reason}
    codes |= set(_HTTP_CODES.values())
    codes |= _string_args(trees, "problem", 1)  # problem(status, code, ...)
    for oauth in ("OAuthError", "TokenError", "CredentialRequestError"):
        codes |= _string_args(trees, oauth, 0)  # OpenID4VCI: error
    codes.add("invalid_token")  # InvalidToken's fixed error (RFC 6750), set in its __init__
    codes |= _string_args(
        trees, "_oauth_error", 1, only="service/services/openid4vp_verifier.py"
    )  # OpenID4VP
    source = (ROOT / "service" / "services" / "openid4vp_verifier.py").read_text(encoding="utf-8")
    codes |= set(re.findall(r'error="(\w+)"', source))  # OpenID4VP: error
    codes |= set(re.findall(r"\(\s*\d{3},\s*\"(\w+)\",", source))  # OpenID4VP: claim refusals
    return codes


def test_the_code_extraction_sees_each_kind_of_code() -> None:
    """Guards the extraction itself: it must find codes of every source it reads."""
    codes = emitted_codes()
    for code in (
        "offer_not_found",
        "status_conflict",
        "internal_error",
        "key_revoked",
        "method_not_allowed",
        "invalid_json",
        "status_unavailable",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_nonce",
        "invalid_proof",
        "invalid_token",
        "nonce_replayed",
        "presentation_rejected",
        "malformed_response",
        "temporarily_unavailable",
        "state_mismatch",
    ):
        assert code in codes, code
    assert "conflict" not in codes  # only a grouping: never answered itself
    assert "gone" not in codes


def test_every_error_code_is_explained_in_the_readme() -> None:
    documented = set(re.findall(r"`([a-z][a-z0-9_]*)`", README))
    assert sorted(emitted_codes() - documented) == []
