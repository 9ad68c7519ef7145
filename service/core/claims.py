"""Personal claims as an issuing app sends them: checked, bounded and normalised.

Names arrive in Latin and Arabic script; the same name typed on two keyboards can differ in
Unicode form, and digests are over exact bytes, so every string is normalised to NFC before it
is signed. Claim names that SD-JWT or SD-JWT VC reserve are refused: an app must not be able to
set ``iss`` or ``status`` through the claims it passes in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

from service.core.display_text import spoofs

__all__ = [
    "RESERVED_CLAIMS",
    "ClaimFault",
    "ClaimLimits",
    "ClaimProblem",
    "ClaimsError",
    "check_national_id_claims",
    "national_id_problems",
    "normalise_claims",
    "normalise_collecting",
    "undefined_claims",
]

#: Characters that make a value display as something else (service.core.display_text).
_SPOOFING: Final = "contains control, bidirectional-override or invisible format characters"

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


class ClaimFault(StrEnum):
    """The kind of a claim problem, a stable ``type`` for clients to branch on."""

    MISSING = "missing"
    UNDEFINED = "undefined_claim"
    RESERVED = "reserved_claim"
    INVALID_NAME = "invalid_claim_name"
    INVALID_VALUE = "invalid_value"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class ClaimProblem:
    """One claim that cannot be issued: where (``loc``, from ``"claims"``), what kind, a
    sentence, and the limit broken, if any. Never the value that was there."""

    loc: tuple[str | int, ...]
    problem: str
    fault: ClaimFault = ClaimFault.INVALID_VALUE
    limit: Mapping[str, int] | None = None

    @property
    def path(self) -> str:
        """``claims.place_of_birth.locality``, ``claims.a[0]``."""
        text = str(self.loc[0])
        for part in self.loc[1:]:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


class ClaimsError(ValueError):
    """Claims that cannot be issued: every problem found, at once. ``path`` and ``problem``
    are the first one's."""

    def __init__(self, problems: Sequence[ClaimProblem]) -> None:
        if not problems:
            raise ValueError("a ClaimsError needs at least one problem")
        self.problems = tuple(problems)
        self.path = self.problems[0].path
        self.problem = self.problems[0].problem
        super().__init__("; ".join(f"{p.path}: {p.problem}" for p in self.problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimLimits:
    max_depth: int = 4
    max_members: int = 64
    max_string: int = 1024


def normalise_claims(claims: Any, limits: ClaimLimits | None = None) -> dict[str, Any]:
    """Validate shape and size, refuse reserved names, and NFC-normalise every string; raises
    ClaimsError with every problem found."""
    normalised, problems = normalise_collecting(claims, limits)
    if problems:
        raise ClaimsError(problems)
    return normalised


def normalise_collecting(
    claims: Any, limits: ClaimLimits | None = None
) -> tuple[dict[str, Any], list[ClaimProblem]]:
    """:func:`normalise_claims` that returns its problems instead of raising: the claims
    without the refused members, and what was refused. Work stays bounded: a member over a
    limit is reported, never walked."""
    limits = limits or ClaimLimits()
    problems: list[ClaimProblem] = []
    if not isinstance(claims, Mapping) or not claims:
        return {}, [ClaimProblem(("claims",), "must be a non-empty object")]

    def refuse(
        loc: tuple[str | int, ...],
        problem: str,
        fault: ClaimFault = ClaimFault.INVALID_VALUE,
        limit: Mapping[str, int] | None = None,
    ) -> None:
        problems.append(ClaimProblem(loc, problem, fault, limit))

    def walk(value: Any, loc: tuple[str | int, ...], depth: int) -> Any:
        if depth > limits.max_depth:
            refuse(loc, "nested too deeply", ClaimFault.TOO_LARGE, {"max_depth": limits.max_depth})
            return None
        if isinstance(value, str):
            if len(value) > limits.max_string:
                refuse(
                    loc, "string too long", ClaimFault.TOO_LARGE, {"max_length": limits.max_string}
                )
                return None
            if spoofs(value):
                refuse(
                    loc, "contains control, bidirectional-override or invisible format characters"
                )
                return None
            return unicodedata.normalize("NFC", value)
        if isinstance(value, bool) or value is None or isinstance(value, int):
            return value
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                refuse(loc, "not a finite number")
                return None
            return value
        if isinstance(value, list):
            if len(value) > limits.max_members:
                refuse(
                    loc,
                    "too many elements",
                    ClaimFault.TOO_LARGE,
                    {"max_items": limits.max_members},
                )
                return None
            return [walk(item, (*loc, i), depth + 1) for i, item in enumerate(value)]
        if isinstance(value, Mapping):
            if len(value) > limits.max_members:
                refuse(
                    loc, "too many members", ClaimFault.TOO_LARGE, {"max_items": limits.max_members}
                )
                return None
            out: dict[str, Any] = {}
            for name, item in value.items():
                if not isinstance(name, str) or not _CLAIM_NAME.fullmatch(name):
                    # The name itself may be what is wrong, so it is not repeated.
                    refuse(loc, "invalid claim name", ClaimFault.INVALID_NAME)
                    continue
                if name in RESERVED_CLAIMS:
                    refuse((*loc, name), "reserved claim name", ClaimFault.RESERVED)
                    continue
                out[unicodedata.normalize("NFC", name)] = walk(item, (*loc, name), depth + 1)
            return out
        refuse(loc, "unsupported JSON type")
        return None

    return walk(claims, ("claims",), 0), problems


def undefined_claims(
    claims: Mapping[str, Any], defined: Collection[tuple[str, ...]]
) -> list[ClaimProblem]:
    """Claims the credential type does not define (its Type Metadata's claim paths): a member
    name that is no defined path, at the top level or inside an object the type defines
    members of. An object claim whose members the type defines must be an object."""
    problems: list[ClaimProblem] = []

    def walk(value: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for name, item in value.items():
            path = (*prefix, name)
            if path not in defined:
                problems.append(
                    ClaimProblem(
                        ("claims", *path),
                        "not a claim of this credential type",
                        ClaimFault.UNDEFINED,
                    )
                )
                continue
            has_members = any(len(p) > len(path) and p[: len(path)] == path for p in defined)
            if has_members:
                if isinstance(item, Mapping):
                    walk(item, path)
                else:
                    problems.append(ClaimProblem(("claims", *path), "must be an object"))

    walk(claims, ())
    return problems


_NATIONAL_ID = re.compile(r"^[A-Z]{1,2}[0-9]{5,7}$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REQUIRED_NATIONAL_ID: Final = ("given_name", "family_name", "birthdate", "national_id")
_SEX: Final = frozenset({"F", "M"})


def check_national_id_claims(
    claims: Mapping[str, Any],
    *,
    today: date,
    defined: Collection[tuple[str, ...]] | None = None,
) -> None:
    """Rules of Thiqa's national identity credential type, on top of the generic ones; raises
    ClaimsError with every problem found. ``defined``: the claim paths the type defines
    (its Type Metadata); any other claim is refused."""
    problems = national_id_problems(claims, today=today, defined=defined)
    if problems:
        raise ClaimsError(problems)


def national_id_problems(
    claims: Mapping[str, Any],
    *,
    today: date,
    defined: Collection[tuple[str, ...]] | None = None,
) -> list[ClaimProblem]:
    """Every way ``claims`` break the national ID's rules, in a fixed order."""
    problems: list[ClaimProblem] = []

    def refuse(name: str, problem: str, fault: ClaimFault = ClaimFault.INVALID_VALUE) -> None:
        problems.append(ClaimProblem(("claims", name), problem, fault))

    for name in _REQUIRED_NATIONAL_ID:
        if name not in claims:
            refuse(name, "required", ClaimFault.MISSING)
    for name in ("given_name", "family_name", "given_name#ar", "family_name#ar"):
        value = claims.get(name)
        if name in claims and (not isinstance(value, str) or not value.strip()):
            refuse(name, "must be a non-empty string")
    if "birthdate" in claims:
        birthdate = claims["birthdate"]
        try:
            born = date.fromisoformat(birthdate) if isinstance(birthdate, str) else None
        except ValueError:
            born = None
        # fullmatch: Python 3.11 fromisoformat also takes "2000-W01-1" and "20000101  ".
        if born is None or not _DATE.fullmatch(birthdate) or born > today:
            refuse("birthdate", "must be a past date as YYYY-MM-DD")
    if "national_id" in claims:
        national_id = claims["national_id"]
        if not isinstance(national_id, str) or not _NATIONAL_ID.fullmatch(national_id):
            refuse("national_id", "must look like AB123456")
    if "sex" in claims and (not isinstance(claims["sex"], str) or claims["sex"] not in _SEX):
        refuse("sex", "must be F or M")
    nationality = claims.get("nationality")
    if nationality is not None and (
        not isinstance(nationality, str) or not re.fullmatch(r"[A-Z]{2}", nationality)
    ):
        refuse("nationality", "must be an ISO 3166-1 alpha-2 code")
    if defined is not None:
        problems += undefined_claims(claims, defined)
    return problems
