"""Claims as an issuing app sends them: names, shape, size, NFC, national-id rules."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

import pytest

from service.core.claims import (
    RESERVED_CLAIMS,
    ClaimFault,
    ClaimLimits,
    ClaimsError,
    check_national_id_claims,
    normalise_claims,
    undefined_claims,
)

TODAY = date(2025, 6, 1)
VALID_ID = {
    "given_name": "Amina",
    "family_name": "Benali",
    "birthdate": "1990-04-12",
    "national_id": "AB123456",
}
NOT_A_BIRTHDATE = ("claims.birthdate", "must be a past date as YYYY-MM-DD")


def refused(claims: Any, limits: ClaimLimits | None = None) -> tuple[str, str]:
    """Where and why ``normalise_claims`` refused: each test compares both, so a refusal for
    another reason than the one under test fails it."""
    with pytest.raises(ClaimsError) as caught:
        normalise_claims(claims, limits)
    return caught.value.path, caught.value.problem


def refusal(claims: Any, limits: ClaimLimits | None = None) -> ClaimsError:
    """The whole refusal, for tests of every problem reported at once."""
    with pytest.raises(ClaimsError) as caught:
        normalise_claims(claims, limits)
    return caught.value


def refused_national(claims: Any) -> tuple[str, str]:
    with pytest.raises(ClaimsError) as caught:
        check_national_id_claims(claims, today=TODAY)
    return caught.value.path, caught.value.problem


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iss", "iat", "nbf", "exp", "jti", "aud", "cnf", "vct", "status"])
def test_refuses_reserved_claim_names(name: str) -> None:
    assert refused({name: "x", "given_name": "Amina"}) == (f"claims.{name}", "reserved claim name")


@pytest.mark.parametrize("name", ["_sd", "_sd_alg", "...", "vct#integrity"])
def test_refuses_sd_jwt_internal_names(name: str) -> None:
    # Refused already by the name pattern; either way they never reach the signer.
    assert name in RESERVED_CLAIMS
    assert refused({name: ["x"]}) == ("claims", "invalid claim name")


def test_refuses_sd_jwt_internal_names_when_nested() -> None:
    assert refused({"address": {"_sd": ["x"]}}) == ("claims.address", "invalid claim name")
    assert refused({"address": {"...": "x"}}) == ("claims.address", "invalid claim name")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1abc",
        "given name",
        "given-name",
        "given_name\n",
        "\ngiven_name",
        "given_name ",
        "اسم",
        "é",
        "a" * 65,
        "name#",
        "name#a",
        "name#arabic",
        "name#ar-",
    ],
)
def test_refuses_names_outside_the_pattern(name: str) -> None:
    assert refused({name: "x"}) == ("claims", "invalid claim name")


@pytest.mark.parametrize(
    "name", ["a", "given_name", "given_name#ar", "family_name#ar-MA", "x" * 64, "A1_b2"]
)
def test_accepts_names_in_the_pattern(name: str) -> None:
    assert normalise_claims({name: "x"}) == {name: "x"}


def test_refuses_non_string_names() -> None:
    assert refused({1: "x"}) == ("claims", "invalid claim name")


# --- shape -------------------------------------------------------------------------------


@pytest.mark.parametrize("claims", [{}, [], "x", None, 1, [("a", 1)]])
def test_refuses_claims_that_are_not_a_non_empty_object(claims: Any) -> None:
    assert refused(claims) == ("claims", "must be a non-empty object")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_refuses_numbers_that_are_not_finite(value: Any) -> None:
    assert refused({"a": value}) == ("claims.a", "not a finite number")


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object(), (1j)])
def test_refuses_values_that_are_not_json(value: Any) -> None:
    assert refused({"a": value}) == ("claims.a", "unsupported JSON type")


def test_accepts_every_json_type() -> None:
    claims = {"s": "x", "i": -3, "f": 1.5, "t": True, "f2": False, "n": None, "l": [1], "o": {}}
    assert normalise_claims(claims) == claims


def test_refuses_tuples_as_arrays() -> None:
    # Tuples are refused: only JSON arrays (lists) are accepted as arrays.
    assert refused({"a": (1, 2)}) == ("claims.a", "unsupported JSON type")


def test_depth_limit_is_exact() -> None:
    limits = ClaimLimits(max_depth=4)
    ok: Any = "leaf"
    for _ in range(3):
        ok = {"k": ok}
    assert normalise_claims({"a": ok}, limits) == {"a": ok}  # a=1, k=2, k=3, k=4 (the leaf)
    too_deep = {"k": ok}
    assert refused({"a": too_deep}, limits) == ("claims.a.k.k.k.k", "nested too deeply")


def test_depth_limit_counts_arrays_too() -> None:
    limits = ClaimLimits(max_depth=2)
    assert normalise_claims({"a": ["x"]}, limits) == {"a": ["x"]}
    assert refused({"a": [["x"]]}, limits) == ("claims.a[0][0]", "nested too deeply")


def test_member_limit_is_exact() -> None:
    limits = ClaimLimits(max_members=3)
    assert normalise_claims({"a": 1, "b": 2, "c": 3}, limits) == {"a": 1, "b": 2, "c": 3}
    assert refused({"a": 1, "b": 2, "c": 3, "d": 4}, limits) == ("claims", "too many members")
    assert normalise_claims({"l": [1, 2, 3]}, limits) == {"l": [1, 2, 3]}
    assert refused({"l": [1, 2, 3, 4]}, limits) == ("claims.l", "too many elements")


def test_string_limit_is_exact() -> None:
    limits = ClaimLimits(max_string=5)
    assert normalise_claims({"a": "abcde"}, limits) == {"a": "abcde"}
    assert refused({"a": "abcdef"}, limits) == ("claims.a", "string too long")


def test_default_limits() -> None:
    assert ClaimLimits() == ClaimLimits(max_depth=4, max_members=64, max_string=1024)
    assert normalise_claims({"a": "x" * 1024}) == {"a": "x" * 1024}
    assert refused({"a": "x" * 1025}) == ("claims.a", "string too long")


def test_error_names_the_path_never_the_value() -> None:
    with pytest.raises(ClaimsError) as caught:
        normalise_claims({"address": {"street": "x" * 2000}})
    assert str(caught.value) == "claims.address.street: string too long"


# --- NFC -----------------------------------------------------------------------------------


def test_normalises_decomposed_latin_to_nfc() -> None:
    decomposed = "Rene\u0301e"
    result = normalise_claims({"given_name": decomposed})
    assert result == {"given_name": "Renée"}
    assert result["given_name"] == unicodedata.normalize("NFC", decomposed)
    assert len(result["given_name"]) == 5


def test_normalises_e_with_combining_acute() -> None:
    assert normalise_claims({"a": "e\u0301"}) == {"a": "\u00e9"}


def test_normalises_arabic_with_combining_marks() -> None:
    # ALEF + HAMZA ABOVE (U+0654) composes to U+0623; ALEF + MADDA ABOVE to U+0622.
    decomposed = "\u0627\u0654\u0645\u064a\u0646\u0629 \u0627\u0653\u062f\u0645"
    result = normalise_claims({"given_name#ar": decomposed})["given_name#ar"]
    assert result == "\u0623\u0645\u064a\u0646\u0629 \u0622\u062f\u0645"
    assert unicodedata.is_normalized("NFC", result)
    # Harakat (short vowels) have no precomposed form and stay, in canonical order.
    voweled = "\u0645\u064f\u062d\u064e\u0645\u0651\u064e\u062f"  # مُحَمَّد
    assert normalise_claims({"n": voweled})["n"] == unicodedata.normalize("NFC", voweled)


def test_normalises_strings_at_every_depth() -> None:
    claims = {"address": {"locality": "Fe\u0300s", "lines": ["e\u0301"]}}
    assert normalise_claims(claims) == {"address": {"locality": "Fès", "lines": ["é"]}}


def test_two_keyboards_give_the_same_claims() -> None:
    assert normalise_claims({"n": "Ame\u0301lie"}) == normalise_claims({"n": "Amélie"})


def test_does_not_change_the_input() -> None:
    claims = {"n": "e\u0301"}
    normalise_claims(claims)
    assert claims == {"n": "e\u0301"}


# --- national identity rules -------------------------------------------------------------


def test_optional_arabic_names_may_be_absent() -> None:
    assert "given_name#ar" not in VALID_ID
    check_national_id_claims(VALID_ID, today=TODAY)


def test_accepts_a_complete_national_id() -> None:
    check_national_id_claims(
        {**VALID_ID, "sex": "F", "nationality": "MA", "given_name#ar": "أمينة"}, today=TODAY
    )


@pytest.mark.parametrize("name", ["given_name", "family_name", "birthdate", "national_id"])
def test_requires_the_core_identity_claims(name: str) -> None:
    claims = dict(VALID_ID)
    del claims[name]
    assert refused_national(claims) == (f"claims.{name}", "required")


@pytest.mark.parametrize("name", ["given_name", "family_name", "given_name#ar", "family_name#ar"])
@pytest.mark.parametrize("value", ["", "   ", 1, None, ["Amina"]])
def test_names_must_be_non_empty_strings(name: str, value: Any) -> None:
    # Present means a non-empty string: a null given_name is no name.
    assert refused_national({**VALID_ID, name: value}) == (
        f"claims.{name}",
        "must be a non-empty string",
    )


@pytest.mark.parametrize(
    "birthdate",
    [
        "1990-4-12",
        "12/04/1990",
        "1990-13-01",
        "1990-02-30",
        "19900412",
        "1990-04-12T00:00",
        "2000-W01-1",  # ISO week date: date.fromisoformat takes it on Python 3.11
        "2000-001",  # ordinal date
        "20000101  ",
        " 1990-04-12",
        "1990-04-12\n",
        "١٩٩٠-٠٤-١٢",  # Arabic-Indic digits
        19900412,
        None,
        "",
    ],
)
def test_birthdate_must_be_yyyy_mm_dd(birthdate: Any) -> None:
    assert refused_national({**VALID_ID, "birthdate": birthdate}) == NOT_A_BIRTHDATE


def test_birthdate_may_be_today_but_not_tomorrow() -> None:
    check_national_id_claims({**VALID_ID, "birthdate": "2025-06-01"}, today=TODAY)
    assert refused_national({**VALID_ID, "birthdate": "2025-06-02"}) == NOT_A_BIRTHDATE


def test_accepts_a_leap_day_birthdate() -> None:
    check_national_id_claims({**VALID_ID, "birthdate": "2000-02-29"}, today=TODAY)


@pytest.mark.parametrize("national_id", ["A12345", "AB1234567", "A123456", "AB12345"])
def test_accepts_national_id_pattern(national_id: str) -> None:
    check_national_id_claims({**VALID_ID, "national_id": national_id}, today=TODAY)


@pytest.mark.parametrize(
    "national_id",
    [
        "ab123456",
        "ABC123456",
        "AB1234",
        "AB12345678",
        "123456",
        "AB 123456",
        "AB123456\n",
        "AB١٢٣٤٥٦",
        "ＡＢ123456",
        123456,
        "",
    ],
)
def test_refuses_national_id_outside_the_pattern(national_id: Any) -> None:
    assert refused_national({**VALID_ID, "national_id": national_id}) == (
        "claims.national_id",
        "must look like AB123456",
    )


@pytest.mark.parametrize("sex", ["F", "M"])
def test_accepts_sex_f_or_m(sex: str) -> None:
    check_national_id_claims({**VALID_ID, "sex": sex}, today=TODAY)


@pytest.mark.parametrize("sex", ["f", "X", "", "female", 1, None, ["F"], {"F": 1}])
def test_refuses_other_sex_values(sex: Any) -> None:
    assert refused_national({**VALID_ID, "sex": sex}) == ("claims.sex", "must be F or M")


@pytest.mark.parametrize("nationality", ["ma", "MAR", "M", "", 1, "M1"])
def test_refuses_nationality_that_is_not_alpha_2(nationality: Any) -> None:
    assert refused_national({**VALID_ID, "nationality": nationality}) == (
        "claims.nationality",
        "must be an ISO 3166-1 alpha-2 code",
    )


def test_normalised_claims_pass_the_national_id_rules() -> None:
    claims = normalise_claims({**VALID_ID, "given_name#ar": "\u0627\u0654\u0645\u064a\u0646\u0629"})
    check_national_id_claims(claims, today=TODAY)
    assert claims["given_name#ar"] == "أمينة"


# --- every problem at once; claims the type does not define ------------------------------

DEFINED = frozenset(
    {
        ("given_name",),
        ("family_name",),
        ("birthdate",),
        ("national_id",),
        ("place_of_birth",),
        ("place_of_birth", "locality"),
    }
)


def test_every_national_id_problem_is_reported_in_order() -> None:
    claims = {"given_name": "", "birthdate": "tomorrow", "national_id": "x", "sex": "X"}
    with pytest.raises(ClaimsError) as caught:
        check_national_id_claims(claims, today=TODAY)
    assert [(p.path, p.fault, p.problem) for p in caught.value.problems] == [
        ("claims.family_name", ClaimFault.MISSING, "required"),
        ("claims.given_name", ClaimFault.INVALID_VALUE, "must be a non-empty string"),
        ("claims.birthdate", ClaimFault.INVALID_VALUE, "must be a past date as YYYY-MM-DD"),
        ("claims.national_id", ClaimFault.INVALID_VALUE, "must look like AB123456"),
        ("claims.sex", ClaimFault.INVALID_VALUE, "must be F or M"),
    ]
    assert caught.value.path == "claims.family_name"


def test_every_structural_problem_is_reported_with_its_limit() -> None:
    limits = ClaimLimits(max_string=4, max_members=2)
    error = refusal({"a": "x" * 5, "iss": "x", "b": [1, 2, 3]}, limits)
    assert [(p.path, p.fault, p.limit) for p in error.problems] == [
        ("claims", ClaimFault.TOO_LARGE, {"max_items": 2}),
    ]
    error = refusal({"a": "x" * 5, "iss": "x"}, limits)
    assert [(p.path, p.fault, p.limit) for p in error.problems] == [
        ("claims.a", ClaimFault.TOO_LARGE, {"max_length": 4}),
        ("claims.iss", ClaimFault.RESERVED, None),
    ]


@pytest.mark.parametrize(
    ("claims", "paths"),
    [
        ({**VALID_ID}, []),
        ({**VALID_ID, "email": "a@b"}, ["claims.email"]),
        (
            {**VALID_ID, "nationalty": "MA", "religion": "x"},
            ["claims.nationalty", "claims.religion"],
        ),
        ({**VALID_ID, "place_of_birth": {"locality": "Fès"}}, []),
        ({**VALID_ID, "place_of_birth": {"street": "x"}}, ["claims.place_of_birth.street"]),
    ],
)
def test_claims_the_type_does_not_define_are_named(
    claims: dict[str, Any], paths: list[str]
) -> None:
    found = undefined_claims(claims, DEFINED)
    assert [p.path for p in found] == paths
    assert all(p.fault is ClaimFault.UNDEFINED for p in found)


def test_an_object_claim_must_be_an_object() -> None:
    found = undefined_claims({**VALID_ID, "place_of_birth": "Fès"}, DEFINED)
    assert [(p.path, p.problem) for p in found] == [("claims.place_of_birth", "must be an object")]


def test_the_national_id_rules_refuse_undefined_claims_when_told_which_exist() -> None:
    check_national_id_claims({**VALID_ID, "email": "a@b"}, today=TODAY)  # no list: no check
    with pytest.raises(ClaimsError) as caught:
        check_national_id_claims({**VALID_ID, "email": "a@b"}, today=TODAY, defined=DEFINED)
    assert [p.path for p in caught.value.problems] == ["claims.email"]


# --- characters that spoof a display ------------------------------------------------------

#: Each can make a claim print as something else: a cleared screen or a hyperlink in a
#: terminal (ESC, C1 CSI/OSC), text read backwards (bidi overrides and isolates), invisible
#: letters (zero-width space, word joiner, BOM, soft hyphen, tag characters), a line break.
SPOOFING = [
    "\x1b[2J",
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "\x07",
    "\x00",
    "line\nbreak",
    "\t",
    "\x7f",
    "\x9b2J",
    "\x9d8;;x",
    "\u202aA",
    "\u202bA",
    "\u202cA",
    "\u202dA",
    "\u202eAB",
    "\u2066A",
    "\u2067A",
    "\u2068A",
    "\u2069A",
    "A\u200bB",
    "A\u2060B",
    "\ufeffA",
    "A\u00adB",
    "A\U000e0041",
    "A\u2028B",
    "A\u2029B",
]


@pytest.mark.parametrize("value", SPOOFING)
def test_refuses_characters_that_spoof_a_display_at_any_depth(value: str) -> None:
    for claims, path in (
        ({"given_name": f"Amina{value}"}, "claims.given_name"),
        ({"place_of_birth": {"locality": value}}, "claims.place_of_birth.locality"),
        ({"nationalities": ["MA", value]}, "claims.nationalities[1]"),
    ):
        error = refusal(claims)
        assert (error.path, error.problem) == (
            path,
            "contains control, bidirectional-override or invisible format characters",
        )
        assert value not in str(error)


@pytest.mark.parametrize(
    "value",
    [
        "عبد\u200cالله",  # zero-width non-joiner: Arabic and Persian spelling needs it
        "A\u200dB",  # zero-width joiner
        "Fès \u200e(MA)",  # left-to-right mark
        "\u200fالإدريسي",  # right-to-left mark
        "\u061cفاس",  # Arabic letter mark
        "[link=https://evil.example]Amina[/link]",  # markup is text; printing disarms it
    ],
)
def test_keeps_marks_that_scripts_need(value: str) -> None:
    assert normalise_claims({"given_name": value}) == {"given_name": value}
