"""JWT time claims (RFC 7519 §4.1.4-6): one reading of ``iat``, ``nbf`` and ``exp`` for every
kind of token Thiqa checks (credentials, key-binding JWTs, key proofs, status list tokens).

A NumericDate is a JSON number of seconds since the epoch (RFC 7519 §2). Thiqa reads it as an
integer or a finite number, never a boolean (``true`` is an ``int`` to Python), from 0 up to
2^53: past that a JSON number stops counting seconds exactly in the parsers of other verifiers,
so two of them could disagree about one token.

The window is checked only when every time claim present is a NumericDate, with the same
leeway for every bound, so a token is judged by one rule whatever carries it:
``exp`` has passed when ``now >= exp + leeway``; ``nbf`` and ``iat`` are in the future when they
exceed ``now + leeway``; ``iat`` is too old when it is below ``now - max_age - leeway``. Each
caller turns the failures into its own wire codes; the clock is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeGuard

__all__ = [
    "MAX_NUMERIC_DATE",
    "TIME_CLAIMS",
    "TimeClaimFailure",
    "TimeProblem",
    "is_numeric_date",
    "time_claim_failures",
]

#: Exclusive upper bound of a NumericDate: the first integer a float cannot tell from its
#: neighbour.
MAX_NUMERIC_DATE: Final = 2**53

#: The time claims, in the order their failures are reported.
TIME_CLAIMS: Final = ("iat", "nbf", "exp")


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """True for an RFC 7519 NumericDate Thiqa accepts: a finite number in [0, 2^53), no bool."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value < MAX_NUMERIC_DATE
    )


class TimeProblem(StrEnum):
    MALFORMED = "malformed"  # present, but not a NumericDate
    MISSING = "missing"  # required and absent
    EXPIRED = "expired"  # exp has passed
    NOT_YET_VALID = "not_yet_valid"  # nbf or iat is in the future
    TOO_OLD = "too_old"  # iat is older than the caller's max age


@dataclass(frozen=True, slots=True)
class TimeClaimFailure:
    claim: str
    problem: TimeProblem


def time_claim_failures(
    claims: Mapping[str, Any],
    *,
    now: int,
    leeway: int,
    required: Collection[str] = (),
    max_age: int | None = None,
) -> tuple[TimeClaimFailure, ...]:
    """Every failed time check of ``claims``, in a fixed order; empty when the times hold.

    First the shapes: each present claim that is not a NumericDate, then each ``required``
    claim that is absent. The window (``exp``, ``nbf``, ``iat``; ``max_age`` bounds how old
    ``iat`` may be) is read only when no present claim is malformed, since comparing a string
    or NaN with the clock means nothing.
    """
    failures: list[TimeClaimFailure] = [
        TimeClaimFailure(name, TimeProblem.MALFORMED)
        for name in TIME_CLAIMS
        if name in claims and not is_numeric_date(claims[name])
    ]
    failures += [
        TimeClaimFailure(name, TimeProblem.MISSING)
        for name in TIME_CLAIMS
        if name in required and name not in claims
    ]
    if any(f.problem is TimeProblem.MALFORMED for f in failures):
        return tuple(failures)
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if exp is not None and now >= exp + leeway:
        failures.append(TimeClaimFailure("exp", TimeProblem.EXPIRED))
    if nbf is not None and nbf > now + leeway:
        failures.append(TimeClaimFailure("nbf", TimeProblem.NOT_YET_VALID))
    if iat is not None and iat > now + leeway:
        failures.append(TimeClaimFailure("iat", TimeProblem.NOT_YET_VALID))
    elif iat is not None and max_age is not None and iat < now - max_age - leeway:
        failures.append(TimeClaimFailure("iat", TimeProblem.TOO_OLD))
    return tuple(failures)
