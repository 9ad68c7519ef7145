"""The Accept header as the token-or-JSON routes read it (service/api/negotiation.py)."""

from __future__ import annotations

import pytest

from service.api.negotiation import accepted, prefers_json

TOKEN = "application/statuslist+jwt"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("APPLICATION/JSON", {"application/json": 1.0}),
        ("application/json;q=0, application/statuslist+jwt", {"application/json": 0.0, TOKEN: 1.0}),
        ("application/json ; charset=utf-8 ; Q=0.5", {"application/json": 0.5}),
        ("application/json;q=abc, text/plain;q=2, image/png;q=nan", {}),
        ("application/json;q=0.2, application/json;q=0.7", {"application/json": 0.7}),
        (" , ;q=1", {}),
    ],
)
def test_accepted(header: str, expected: dict[str, float]) -> None:
    assert accepted(header) == expected


@pytest.mark.parametrize(
    ("header", "json_wanted"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json;q=0", False),
        ("application/json;q=0, application/statuslist+jwt", False),
        ("application/json, application/statuslist+jwt", False),  # a tie keeps the token
        ("application/json, APPLICATION/STATUSLIST+JWT;q=0.5", True),
        ("application/json;q=0.1, application/statuslist+jwt;q=0", True),
        ("application/*, */*", False),  # JSON only when named
        ("application/json;q=bogus", False),
        ("", False),
    ],
)
def test_prefers_json(header: str, json_wanted: bool) -> None:
    assert prefers_json(header, TOKEN) is json_wanted
