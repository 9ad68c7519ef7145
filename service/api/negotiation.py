"""Content negotiation for the routes that can answer a signed token or its JSON form.

Such a route's default is its token (a status list's ``statuslist+jwt``, a Request Object's
``oauth-authz-req+jwt``): what a conformant client expects without asking. JSON is answered
only when ``application/json`` is named, acceptable and preferred to the token, so a
``*/*`` or a tie keeps the token. The ``Accept`` header is read as RFC 9110 §12.5.1 says
enough for that: media types compare case-insensitively, ``q`` weighs each one (``q=0`` is
"not acceptable"), and parameters other than ``q`` are ignored.
"""

from __future__ import annotations

from typing import Final

__all__ = ["JSON", "accepted", "prefers", "prefers_json"]

JSON: Final = "application/json"


def _weight(parameters: list[str]) -> float | None:
    """The ``q`` of one element: 1 when absent, None when it is not a valid qvalue."""
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "q":
            continue
        try:
            weight = float(value.strip())
        except ValueError:
            return None
        return weight if 0 <= weight <= 1 else None
    return 1.0


def accepted(header: str) -> dict[str, float]:
    """Each media type the header names (lower case) with its weight; an element whose
    ``q`` is unreadable is left out, as if not named."""
    weights: dict[str, float] = {}
    for element in header.split(","):
        media, *parameters = element.split(";")
        media = media.strip().lower()
        weight = _weight(parameters)
        if media and weight is not None:
            weights[media] = max(weight, weights.get(media, 0.0))
    return weights


def prefers(header: str, media: str, default: str) -> bool:
    """True when ``media`` is named with a weight above zero and above that of ``default``,
    the route's token media type."""
    weights = accepted(header)
    wanted = weights.get(media.lower(), 0.0)
    return wanted > 0 and wanted > weights.get(default.lower(), 0.0)


def prefers_json(header: str, default: str) -> bool:
    """True when ``application/json`` is named with a weight above zero and above that of
    ``default``, the route's token media type."""
    return prefers(header, JSON, default)
