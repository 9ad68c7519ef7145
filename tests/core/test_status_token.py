"""Reading other issuers' Status List Tokens: a token that decodes must also be one whose
entries can be looked up, so a bad list ends as ``StatusListError`` (status unavailable),
never as an exception from the lookup afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.keys import generate_signing_key
from service.core.status_list import StatusListError, get_status
from service.core.status_token import read_status_list, sign_status_list, status_list_claims

KEY = generate_signing_key("ES256")
URI = "https://status.example/lists/1"
NOW = 1_700_000_000


def _token(bits: Any) -> str:
    claims = status_list_claims(
        bytes(16), uri=URI, issuer="https://issuer.example", now=NOW, ttl=60, lifetime=600
    )
    claims["status_list"]["bits"] = bits
    return sign_status_list(claims, KEY)


def _read(token: str) -> Any:
    return read_status_list(token, keys={KEY.kid: KEY.verification_key()}, uri=URI, now=NOW)


@pytest.mark.parametrize("bits", [2.0, 1.0, True, "2", None])
def test_bits_must_be_an_integer_width(bits: Any) -> None:
    with pytest.raises(StatusListError):
        _read(_token(bits))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_every_width_read_can_be_looked_up(bits: int) -> None:
    token = _read(_token(bits))
    assert token.bits == bits
    assert get_status(token.data, 3, token.bits) == 0
