"""Fixtures for API tests: a citizen, a wallet key, and a way to issue and present."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.core import holder
from service.core.keys import SigningKey, generate_signing_key, public_jwk

AUDIENCE = "https://verifier.example.ma"
NONCE = "n-0S6_WzA2Mj"


@pytest.fixture
def citizen() -> dict[str, Any]:
    return {
        "given_name": "Amina",
        "given_name#ar": "أمينة",
        "family_name": "El Idrissi",
        "family_name#ar": "الإدريسي",
        "birthdate": "1990-04-12",
        "place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"},
        "sex": "F",
        "national_id": "ZZ104233",
        "nationality": "MA",
    }


@pytest.fixture
def wallet() -> SigningKey:
    return generate_signing_key("ES256")


@pytest.fixture
def issued(http: httpx.Client, citizen: dict[str, Any], wallet: SigningKey) -> dict[str, Any]:
    response = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(wallet.key)}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def present(issued: dict[str, Any], wallet: SigningKey) -> Callable[..., str]:
    def make(
        claims: tuple[str, ...] = ("given_name", "family_name#ar"),
        *,
        nonce: str = NONCE,
        audience: str = AUDIENCE,
        credential: str | None = None,
        now: int | None = None,
    ) -> str:
        return holder.present(
            credential or issued["credential"],
            claims,
            holder_key=wallet,
            nonce=nonce,
            audience=audience,
            now=now if now is not None else int(time.time()),
        )

    return make


def codes(body: dict[str, Any]) -> list[str]:
    return [error["code"] for error in body["errors"]]
