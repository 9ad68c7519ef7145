"""Thiqa's OpenID4VP response endpoint answered by the reference SD-JWT library (PyPI
``sd-jwt``) as the holder: a presentation Thiqa's own code did not build, bound to the
request's nonce and to its full client id, is accepted, and only the requested claims come
back to the relying party."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sd_jwt.holder import SDJWTHolder

from service.core.encoding import b64url_decode
from service.core.jwe import encrypt_response
from service.core.keys import generate_signing_key, public_jwk

from .helpers import reference_jwk

CITIZEN: dict[str, Any] = {
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


def test_reference_holder_answers_a_presentation_request(
    http: httpx.Client, anonymous: httpx.Client
) -> None:
    holder_key = generate_signing_key("ES256")
    issued = http.post(
        "/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public_jwk(holder_key.key)}
    )
    assert issued.status_code == 201, issued.text
    created = http.post(
        "/v1/presentation-requests",
        json={
            "claims": [["given_name#ar"], ["place_of_birth", "locality"]],
            "purpose": "التحقق من الهوية",
        },
    ).json()

    # The wallet's side, by hand: fetch the (signed) Request Object and read it; its
    # signature and certificate are the subject of tests/wallet and the OWF wallet test.
    fetched = anonymous.get(created["request_uri"])
    assert fetched.headers["content-type"] == "application/oauth-authz-req+jwt"
    request = json.loads(b64url_decode(fetched.text.split(".")[1]))

    holder = SDJWTHolder(issued.json()["credential"])
    # The reference holder over-shares (birthdate, country): Thiqa must drop them.
    holder.create_presentation(
        {
            "given_name#ar": True,
            "birthdate": True,
            "place_of_birth": {"locality": True, "country": True},
        },
        nonce=request["nonce"],
        aud=request["client_id"],
        holder_key=reference_jwk(holder_key, private=True),
        sign_alg="ES256",
    )
    # The default request takes an encrypted answer (direct_post.jwt): the reference
    # library's presentation goes inside a JWE to the request's key.
    (encryption_key,) = request["client_metadata"]["jwks"]["keys"]
    answer = anonymous.post(
        request["response_uri"],
        data={
            "response": encrypt_response(
                {
                    "vp_token": {"credential": [holder.sd_jwt_presentation]},
                    "state": request["state"],
                },
                public_jwk=encryption_key,
            )
        },
    )
    assert answer.status_code == 200, answer.text
    verdict = http.get(f"/v1/presentation-requests/{created['request_id']}").json()["verdict"]
    assert verdict["valid"] is True, verdict
    assert verdict["claims"] == {"given_name#ar": "أمينة", "place_of_birth": {"locality": "Fès"}}
