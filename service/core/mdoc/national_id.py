"""Thiqa's national ID as an mdoc: its docType, namespace and data elements.

The SD-JWT VC claims (checked by :mod:`service.core.claims`) map onto element identifiers of
the ISO mDL (18013-5 §7.2.1) and EUDI PID vocabularies, so a verifier that knows either reads
them without a table of Thiqa's own: Arabic-script names go to the mDL's
``*_national_character`` elements, ``birthdate`` becomes ``birth_date`` (a tag-1004
full-date), ``sex`` the ISO/IEC 5218 number, ``nationality`` the PID's array of alpha-2 codes,
``national_id`` the PID's ``personal_administrative_number``. ``issue_date`` and
``expiry_date`` come from the credential's own lifetime.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

__all__ = ["CLAIM_ELEMENTS", "DOCTYPE", "ELEMENTS", "NAMESPACE", "elements_from_claims"]

DOCTYPE: Final = "ma.thiqa.national_id.1"
NAMESPACE: Final = DOCTYPE
#: ISO/IEC 5218: 1 male, 2 female.
_SEX: Final = {"M": 1, "F": 2}
#: Every element Thiqa may put in a national ID mdoc.
ELEMENTS: Final = (
    "family_name",
    "given_name",
    "family_name_national_character",
    "given_name_national_character",
    "birth_date",
    "place_of_birth",
    "sex",
    "nationality",
    "personal_administrative_number",
    "issue_date",
    "expiry_date",
)


#: The SD-JWT VC claim each element carries (for labels shared with the type metadata).
CLAIM_ELEMENTS: Final = {
    "given_name": "given_name",
    "given_name#ar": "given_name_national_character",
    "family_name": "family_name",
    "family_name#ar": "family_name_national_character",
    "birthdate": "birth_date",
    "place_of_birth": "place_of_birth",
    "sex": "sex",
    "nationality": "nationality",
    "national_id": "personal_administrative_number",
}


def _day(unix: int) -> date:
    return datetime.fromtimestamp(unix, UTC).date()


def elements_from_claims(
    claims: Mapping[str, Any], *, issued_at: int, expires_at: int
) -> dict[str, dict[str, Any]]:
    """The namespace → elements of the mdoc for already-checked national ID ``claims``."""
    out: dict[str, Any] = {
        "family_name": claims["family_name"],
        "given_name": claims["given_name"],
    }
    if "family_name#ar" in claims:
        out["family_name_national_character"] = claims["family_name#ar"]
    if "given_name#ar" in claims:
        out["given_name_national_character"] = claims["given_name#ar"]
    out["birth_date"] = date.fromisoformat(claims["birthdate"])
    place = claims.get("place_of_birth")
    if isinstance(place, Mapping) and place:
        renamed = {"locality#ar": "locality_national_character"}
        out["place_of_birth"] = {renamed.get(k, k): v for k, v in place.items()}
    if claims.get("sex") in _SEX:
        out["sex"] = _SEX[claims["sex"]]
    if isinstance(claims.get("nationality"), str):
        out["nationality"] = [claims["nationality"]]
    out["personal_administrative_number"] = claims["national_id"]
    out["issue_date"] = _day(issued_at)
    out["expiry_date"] = _day(expires_at)
    return {NAMESPACE: out}
