"""Personal claims as an issuing app sends them: checked, bounded and normalised.

Names arrive in Latin and Arabic script; the same name typed on two keyboards can differ in
Unicode form, and digests are over exact bytes, so every string is normalised to NFC before it
is signed. Claim names that SD-JWT or SD-JWT VC reserve are refused: an app must not be able to
set ``iss`` or ``status`` through the claims it passes in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from service.core.display_text import spoofs

__all__ = [
    "RESERVED_CLAIMS",
    "ClaimLimits",
    "ClaimsError",
    "check_national_id_claims",
    "normalise_claims",
]

#: Set by Thiqa itself, never by the caller (RFC 7519, RFC 9901, SD-JWT VC).
RESERVED_CLAIMS: Final = frozenset(
    {
        "iss",
        "iat",
        "nbf",
        "exp",
        "jti",
        "aud",
        "cnf",
        "vct",
        "vct#integrity",
        "status",
        "_sd",
        "_sd_alg",
        "...",
    }
)
_CLAIM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}(#[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)?$")


class ClaimsError(ValueError):
    """Claims that cannot be issued. ``path`` says where, never what value was there."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimLimits:
    max_depth: int = 4
    max_members: int = 64
    max_string: int = 1024


def normalise_claims(claims: Any, limits: ClaimLimits | None = None) -> dict[str, Any]:
    """Validate shape and size, refuse reserved names, and NFC-normalise every string."""
    limits = limits or ClaimLimits()
    if not isinstance(claims, Mapping) or not claims:
        raise ClaimsError("claims", "must be a non-empty object")

    def walk(value: Any, path: str, depth: int) -> Any:
        if depth > limits.max_depth:
            raise ClaimsError(path, "nested too deeply")
        if isinstance(value, str):
            if len(value) > limits.max_string:
                raise ClaimsError(path, "string too long")
            if spoofs(value):
                raise ClaimsError(
                    path, "contains control, bidirectional-override or invisible format characters"
                )
            return unicodedata.normalize("NFC", value)
        if isinstance(value, bool) or value is None or isinstance(value, int):
            return value
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise ClaimsError(path, "not a finite number")
            return value
        if isinstance(value, list):
            if len(value) > limits.max_members:
                raise ClaimsError(path, "too many elements")
            return [walk(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        if isinstance(value, Mapping):
            if len(value) > limits.max_members:
                raise ClaimsError(path, "too many members")
            out: dict[str, Any] = {}
            for name, item in value.items():
                if not isinstance(name, str) or not _CLAIM_NAME.fullmatch(name):
                    raise ClaimsError(path, "invalid claim name")
                if name in RESERVED_CLAIMS:
                    raise ClaimsError(f"{path}.{name}", "reserved claim name")
                out[unicodedata.normalize("NFC", name)] = walk(item, f"{path}.{name}", depth + 1)
            return out
        raise ClaimsError(path, "unsupported JSON type")

    return walk(claims, "claims", 0)


_NATIONAL_ID = re.compile(r"^[A-Z]{1,2}[0-9]{5,7}$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REQUIRED_NATIONAL_ID: Final = ("given_name", "family_name", "birthdate", "national_id")
_SEX: Final = frozenset({"F", "M"})


def check_national_id_claims(claims: Mapping[str, Any], *, today: date) -> None:
    """Rules of Thiqa's national identity credential type, on top of the generic ones."""
    for name in _REQUIRED_NATIONAL_ID:
        if name not in claims:
            raise ClaimsError(f"claims.{name}", "required")
    for name in ("given_name", "family_name", "given_name#ar", "family_name#ar"):
        value = claims.get(name)
        if name in claims and (not isinstance(value, str) or not value.strip()):
            raise ClaimsError(f"claims.{name}", "must be a non-empty string")
    birthdate = claims["birthdate"]
    try:
        born = date.fromisoformat(birthdate) if isinstance(birthdate, str) else None
    except ValueError:
        born = None
    # fullmatch: Python 3.11 fromisoformat also takes "2000-W01-1" and "20000101  ".
    if born is None or not _DATE.fullmatch(birthdate) or born > today:
        raise ClaimsError("claims.birthdate", "must be a past date as YYYY-MM-DD")
    national_id = claims["national_id"]
    if not isinstance(national_id, str) or not _NATIONAL_ID.fullmatch(national_id):
        raise ClaimsError("claims.national_id", "must look like AB123456")
    if "sex" in claims and (not isinstance(claims["sex"], str) or claims["sex"] not in _SEX):
        raise ClaimsError("claims.sex", "must be F or M")
    nationality = claims.get("nationality")
    if nationality is not None and (
        not isinstance(nationality, str) or not re.fullmatch(r"[A-Z]{2}", nationality)
    ):
        raise ClaimsError("claims.nationality", "must be an ISO 3166-1 alpha-2 code")
