"""Request examples in the OpenAPI document that succeed as they stand.

Swagger UI fills "Try it out" with the first example of an operation's body; without one it
invents `"vct": "string"` and `"expires_in": 1`, and the first click fails. Each operation that
takes a JSON body gets examples here, from the synthetic citizens of ``seeds/`` (the first one,
whose national ID passes every rule), and the ``claims`` member of an issuance or offer says in
its schema what the national ID requires.

A verification needs a credential this server signed a moment ago, which no static document can
hold: its examples carry :data:`FRESH_CREDENTIAL` or :data:`FRESH_PRESENTATION` in place of the
credential and say how to get one. ``tests/api/test_openapi_examples.py`` runs every example
against a live server (making those credentials first) and checks the documented status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

__all__ = [
    "EXAMPLES",
    "FRESH_CREDENTIAL",
    "FRESH_PRESENTATION",
    "NATIONAL_ID_CLAIMS_SCHEMA",
    "WALLET_WRITTEN",
    "document_examples",
]

FRESH_CREDENTIAL: Final = "<the `credential` of a POST /v1/credentials answer>"
FRESH_PRESENTATION: Final = (
    "<a presentation of a holder-bound credential with a KB-JWT for this nonce and audience>"
)

#: Synthetic citizen 0 of seeds/citizens.json (never a real person).
CITIZEN: Final = {
    "given_name": "Amina",
    "given_name#ar": "أمينة",
    "family_name": "El Idrissi",
    "family_name#ar": "الإدريسي",
    "birthdate": "1984-03-12",
    "place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"},
    "sex": "F",
    "national_id": "ZZ104233",
    "nationality": "MA",
}

_LATIN = "in Latin script (OpenID Connect Core §5.2: the plain name holds the default script)"
_ARABIC = "in Arabic script (the `#ar` language tag, OpenID Connect Core §5.2)"

#: What the national ID type (the default `vct`) requires of `claims`: the rules of
#: service.core.claims.check_national_id_claims, with the claims of the type's metadata. No
#: stricter than those rules (tests/api/test_schema_fuzz.py sends what this schema forbids and
#: expects a refusal).
NATIONAL_ID_CLAIMS_SCHEMA: Final[dict[str, Any]] = {
    "required": ["given_name", "family_name", "birthdate", "national_id"],
    "properties": {
        "given_name": {"type": "string", "minLength": 1, "description": f"Given name {_LATIN}."},
        "given_name#ar": {
            "type": "string",
            "minLength": 1,
            "description": f"Given name {_ARABIC}.",
        },
        "family_name": {
            "type": "string",
            "minLength": 1,
            "description": f"Family name {_LATIN}.",
        },
        "family_name#ar": {
            "type": "string",
            "minLength": 1,
            "description": f"Family name {_ARABIC}.",
        },
        "birthdate": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "description": "Date of birth, YYYY-MM-DD, not in the future.",
        },
        # Its members' types are not checked when issuing: described, not constrained (a
        # schema stricter than the server misleads a client as much as a looser one).
        "place_of_birth": {
            "description": "Place of birth: an object of `locality` (town or city in Latin "
            "script), `locality#ar` (in Arabic script) and `country` (ISO 3166-1 alpha-2).",
            "properties": {
                "locality": {"description": f"Town or city {_LATIN}."},
                "locality#ar": {"description": f"Town or city {_ARABIC}."},
                "country": {"description": "ISO 3166-1 alpha-2 country code, e.g. MA."},
            },
        },
        "sex": {"type": "string", "enum": ["F", "M"]},
        "national_id": {
            "type": "string",
            "pattern": "^[A-Z]{1,2}[0-9]{5,7}$",
            "description": "National ID number: one or two capital letters, 5 to 7 digits.",
        },
        "nationality": {
            "type": ["string", "null"],
            "pattern": "^[A-Z]{2}$",
            "description": "ISO 3166-1 alpha-2 country code; null is the same as leaving it out.",
        },
    },
}

_CLAIMS_DESCRIPTION = (
    " For the national ID (the default `vct`): `given_name`, `family_name`, `birthdate` and "
    "`national_id` are required; names in Arabic script go under `given_name#ar` and "
    "`family_name#ar`; the formats are in this schema. Every string is normalised to NFC."
)

#: (method, path) -> examples by name: summary, description, value and the status it gets.
EXAMPLES: Final[dict[tuple[str, str], dict[str, dict[str, Any]]]] = {
    ("post", "/v1/credentials"): {
        "national_id": {
            "summary": "A national ID for a synthetic citizen, valid a year",
            "description": "Answers 201 with the credential.",
            "value": {"claims": CITIZEN, "valid_for_days": 365},
            "x-status": 201,
        },
    },
    ("post", "/v1/credential-offers"): {
        "with_pin": {
            "summary": "Offer a national ID to a wallet, with a PIN",
            "description": "Answers 201 with the offer, its QR code and the PIN (`tx_code`).",
            "value": {"claims": CITIZEN, "valid_for_days": 365, "tx_code": True},
            "x-status": 201,
        },
    },
    ("post", "/v1/presentation-requests"): {
        "names_and_birthplace": {
            "summary": "Ask for the names in both scripts and the town of birth",
            "description": "Answers 201 with the request, its QR code and its `wallet_uri`.",
            "value": {
                "claims": [
                    ["given_name"],
                    ["given_name#ar"],
                    ["family_name"],
                    ["family_name#ar"],
                    ["place_of_birth", "locality"],
                ],
                "purpose": "Vérification d'identité pour une demande d'aide sociale",
                "expires_in": 300,
            },
            "x-status": 201,
        },
    },
    ("post", "/v1/verify"): {
        "credential": {
            "summary": "A credential as issued (no key binding asked)",
            "description": "Replace `credential` with the `credential` of a `POST "
            "/v1/credentials` answer (issued without `holder_jwk`). Answers 200 with "
            '`"valid": true` and every claim.',
            "value": {"credential": FRESH_CREDENTIAL},
            "x-status": 200,
        },
        "presentation": {
            "summary": "A holder's presentation bound to your nonce and audience",
            "description": "Replace `credential` with a presentation the holder made for "
            "exactly this `nonce` and `audience`: the issued SD-JWT (issued with its "
            "`holder_jwk`), the disclosures it chose, and a KB-JWT signed with its key "
            "(`thiqa wallet present` or any SD-JWT wallet makes one). Answers 200 with "
            '`"valid": true`, `"key_bound": true` and the disclosed claims.',
            "value": {
                "credential": FRESH_PRESENTATION,
                "nonce": "n-0S6_WzA2Mj",
                "audience": "https://benefits.example.ma",
            },
            "x-status": 200,
        },
    },
    ("post", "/v1/verify/batch"): {
        "two_credentials": {
            "summary": "Two credentials as issued, verified in one call",
            "description": "Replace each `credential` with the `credential` of a `POST "
            "/v1/credentials` answer. Answers 200 with one verdict per presentation, in order, "
            'each `"valid": true`.',
            "value": {
                "presentations": [
                    {"credential": FRESH_CREDENTIAL},
                    {"credential": FRESH_CREDENTIAL},
                ]
            },
            "x-status": 200,
        },
    },
}

#: API bodies that only a wallet can write (an encrypted answer to one live request): no
#: example could succeed as it stands, so none is offered.
WALLET_WRITTEN: Final = frozenset(
    {("post", "/v1/presentation-requests/{request_id}/dc-api-response")}
)

_SCHEMA_OF_CLAIMS = ("IssueRequest", "OfferRequest")


def _complete(document: dict[str, Any]) -> dict[str, Any]:
    for (method, path), examples in EXAMPLES.items():
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        body["examples"] = {
            name: {k: v for k, v in example.items() if not k.startswith("x-")}
            for name, example in examples.items()
        }
    schemas = document["components"]["schemas"]
    for name in _SCHEMA_OF_CLAIMS:
        claims = schemas[name]["properties"]["claims"]
        claims.update(NATIONAL_ID_CLAIMS_SCHEMA)
        claims["description"] = claims.get("description", "") + _CLAIMS_DESCRIPTION
    return document


def document_examples(app: FastAPI) -> None:
    """Make ``app.openapi()`` carry the examples (on top of what it built before)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
