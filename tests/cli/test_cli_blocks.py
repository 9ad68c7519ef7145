"""The CLI's record blocks (service/cli/blocks.py): every line within the width, every value
whole once its folded pieces are put back together."""

from __future__ import annotations

import pytest

from service.cli.blocks import block

FIELDS = [
    ("issuer", "https://identity.ministry-of-interior.example.org/issuers/national/v2"),
    ("result", "invalid_signature,expired,key_binding_required,revoked"),
    ("client", "c" * 64),
    ("empty", ""),
    ("name", "أمينة الإدريسي Amina El Idrissi"),
]


@pytest.mark.parametrize("width", [1, 24, 40, 80, 200])
def test_lines_fit_and_values_survive(width: int) -> None:
    lines = block("2025-06-01T10:00:00.000Z credential.verified", FIELDS, width)
    assert max(len(line) for line in lines) <= max(width, 24)
    assert all(line.startswith("  ") for line in lines[1:])
    assert not any("empty" in line for line in lines)  # no value, no line
    joined = "".join(line.strip() for line in lines)
    for _, value in FIELDS:
        assert value.replace(" ", "") in joined.replace(" ", "")


def test_wide_enough_is_one_line_per_field_names_aligned() -> None:
    lines = block("title", [("alg", "ES256"), ("signs from", "2025-06-01 10:00:00Z")], 80)
    assert lines == ["title", "  alg         ES256", "  signs from  2025-06-01 10:00:00Z"]


def test_the_title_is_cut_at_spaces_only() -> None:
    kid = "a9Wna8hkWuu4WiN1pUVumwPhMoFgg47kIkajTGqE8sk"
    assert block(kid, [("alg", "ES256")], 30) == [kid, "  alg  ES256"]
    assert block(f"{kid} (signing)", [], 30) == [kid, "  (signing)"]
