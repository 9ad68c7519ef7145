"""The two form endpoints wallets post to read their forms by one rule (service/api/forms.py):
UTF-8 only, each parameter once, a bounded number of fields, the form media type. A form
broken any of those ways is the protocol's own error, and nothing behind it runs."""

from __future__ import annotations

import httpx
import pytest

FORM = {"content-type": "application/x-www-form-urlencoded"}
GRANT = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Apre-authorized_code"

BROKEN = [
    pytest.param(FORM, f"{GRANT}&pre-authorized_code=%FF%FE", id="percent-escape-not-utf8"),
    pytest.param(FORM, f"{GRANT}&pre-authorized_code=a&pre-authorized_code=b", id="repeated"),
    pytest.param(FORM, GRANT + "".join(f"&x{i}=1" for i in range(20)), id="too-many-fields"),
    pytest.param(FORM, b"\xff\xfe=1", id="body-not-utf8"),
    pytest.param({"content-type": "application/json"}, '{"grant_type": "x"}', id="json"),
    pytest.param({}, GRANT, id="no-media-type"),
]


@pytest.mark.parametrize(("headers", "body"), BROKEN)
def test_the_token_endpoint_refuses_a_broken_form(
    anonymous: httpx.Client, headers: dict[str, str], body: str | bytes
) -> None:
    response = anonymous.post("/token", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("headers", "body"), BROKEN)
def test_the_response_endpoint_refuses_a_broken_form(
    anonymous: httpx.Client, headers: dict[str, str], body: str | bytes
) -> None:
    response = anonymous.post("/presentation-responses/" + "r" * 22, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_response"
    assert response.json()["error"] == "invalid_request"
