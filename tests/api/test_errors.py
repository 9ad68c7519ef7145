"""Errors that say what to fix: exact codes and bodies over real HTTP against a real Redis.

Each refusal names its code, what to change and the limit broken, never the value sent, and
changes nothing in Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from service.api.deps import MALFORMED, NO_HEADER, NOT_ACCEPTED
from service.settings import Settings

PROBLEM = "application/problem+json"


def _data_keys(redis_client: redis.Redis, settings: Settings) -> set[bytes]:
    """Every key under the test's prefix but the per-minute request counters."""
    return {
        key for key in redis_client.scan_iter(f"{settings.redis_prefix}:*") if b":rate:" not in key
    }


# -- a body that is not sent as JSON ---------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("path", ["/v1/credentials", "/v1/verify", "/v1/credential-offers"])
def test_a_body_not_sent_as_json_is_415_and_changes_nothing(
    http: httpx.Client,
    settings: Settings,
    redis_client: redis.Redis,
    citizen: dict[str, Any],
    content_type: str | None,
    path: str,
) -> None:
    before = _data_keys(redis_client, settings)
    headers = {"Content-Type": content_type} if content_type else {}
    body = httpx.Request("POST", "/", json={"claims": citizen, "credential": "x"}).content
    request = http.build_request("POST", path, content=body, headers=headers)
    assert request.headers.get("content-type") == content_type  # None: no header at all
    response = http.send(request)
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "https://thiqa.dev/problems/unsupported_media_type",
        "title": "The body must be JSON",
        "status": 415,
        "code": "unsupported_media_type",
        "detail": "Send the body as JSON with Content-Type: application/json.",
    }
    assert _data_keys(redis_client, settings) == before


# -- validation items: a message and the limit, never the value -------------------------------


def test_a_value_over_its_limit_says_the_limit_and_not_the_value(
    http: httpx.Client, citizen: dict[str, Any]
) -> None:
    response = http.post("/v1/credentials", json={"claims": citizen, "valid_for_days": 99999})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["errors"] == [
        {
            "loc": ["body", "valid_for_days"],
            "type": "less_than_equal",
            "message": "Input should be less than or equal to 3650",
            "limit": {"le": 3650},
        }
    ]
    assert "99999" not in response.text


def test_every_schema_problem_is_reported_at_once(http: httpx.Client) -> None:
    response = http.post(
        "/v1/verify", json={"credential": "", "nonce": "n" * 300, "unexpected": "secret-value"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "loc": ["body", "credential"],
            "type": "string_too_short",
            "message": "String should have at least 1 character",
            "limit": {"min_length": 1},
        },
        {
            "loc": ["body", "nonce"],
            "type": "string_too_long",
            "message": "String should have at most 256 characters",
            "limit": {"max_length": 256},
        },
        {
            "loc": ["body", "unexpected"],
            "type": "extra_forbidden",
            "message": "Extra inputs are not permitted",
        },
    ]
    assert "secret-value" not in response.text
    assert "n" * 300 not in response.text


# -- claims: every problem at once, undefined claims refused ---------------------------------


def test_every_claim_problem_is_reported_at_once(
    http: httpx.Client, settings: Settings, redis_client: redis.Redis, citizen: dict[str, Any]
) -> None:
    before = _data_keys(redis_client, settings)
    claims = {key: value for key, value in citizen.items() if key != "family_name"}
    claims |= {"birthdate": "12/04/1990", "national_id": "zz-104233", "nationalty": "MA"}
    response = http.post("/v1/credentials", json={"claims": claims})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_claims"
    assert body["path"] == "claims.family_name"
    assert body["errors"] == [
        {"loc": ["body", "claims", "family_name"], "type": "missing", "message": "required"},
        {
            "loc": ["body", "claims", "birthdate"],
            "type": "invalid_value",
            "message": "must be a past date as YYYY-MM-DD",
        },
        {
            "loc": ["body", "claims", "national_id"],
            "type": "invalid_value",
            "message": "must look like AB123456",
        },
        {
            "loc": ["body", "claims", "nationalty"],
            "type": "undefined_claim",
            "message": "not a claim of this credential type",
        },
    ]
    assert body["detail"] == (
        "claims.family_name: required; "
        "claims.birthdate: must be a past date as YYYY-MM-DD; "
        "claims.national_id: must look like AB123456; "
        "claims.nationalty: not a claim of this credential type"
    )
    assert "12/04/1990" not in response.text
    assert "zz-104233" not in response.text
    assert _data_keys(redis_client, settings) == before


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"email": "amina@example.ma"}, ["claims", "email"]),
        ({"religion": "none of your business"}, ["claims", "religion"]),
        ({"given_name#fr": "Amina"}, ["claims", "given_name#fr"]),
        (
            {"place_of_birth": {"locality": "Fès", "street": "Derb 12"}},
            ["claims", "place_of_birth", "street"],
        ),
    ],
)
@pytest.mark.parametrize("path", ["/v1/credentials", "/v1/credential-offers"])
def test_a_claim_the_type_does_not_define_is_refused_and_nothing_is_issued(
    http: httpx.Client,
    settings: Settings,
    redis_client: redis.Redis,
    citizen: dict[str, Any],
    extra: dict[str, Any],
    loc: list[str],
    path: str,
) -> None:
    before = _data_keys(redis_client, settings)
    response = http.post(path, json={"claims": {**citizen, **extra}})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_claims"
    assert body["errors"] == [
        {
            "loc": ["body", *loc],
            "type": "undefined_claim",
            "message": "not a claim of this credential type",
        }
    ]
    assert body["path"] == ".".join(loc)
    value = next(iter(extra.values()))
    assert str(value) not in response.text
    assert _data_keys(redis_client, settings) == before


def test_a_claim_whose_members_the_type_defines_must_be_an_object(
    http: httpx.Client, citizen: dict[str, Any]
) -> None:
    response = http.post(
        "/v1/credentials", json={"claims": {**citizen, "place_of_birth": "Fès, Morocco"}}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "loc": ["body", "claims", "place_of_birth"],
            "type": "invalid_value",
            "message": "must be an object",
        }
    ]


def test_a_limit_on_claims_is_stated(http: httpx.Client, citizen: dict[str, Any]) -> None:
    response = http.post("/v1/credentials", json={"claims": {**citizen, "given_name": "A" * 2000}})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "loc": ["body", "claims", "given_name"],
            "type": "too_large",
            "message": "string too long",
            "limit": {"max_length": 1024},
        }
    ]
    assert "A" * 50 not in response.text


def test_unsupported_vct_names_the_types_this_service_issues(
    http: httpx.Client, settings: Settings, citizen: dict[str, Any]
) -> None:
    response = http.post(
        "/v1/credentials", json={"claims": citizen, "vct": "https://other.example/type"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "unsupported_vct"
    assert body["detail"] == f"This service issues {settings.national_id_vct} only."


# -- 401: what is wrong with the API key, never whether a key id exists ----------------------


def _unauthenticated(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "type": "https://thiqa.dev/problems/unauthenticated",
        "title": "A valid API key is required",
        "status": 401,
        "code": "unauthenticated",
        "detail": detail,
    }


def test_401_says_the_header_is_missing(anonymous: httpx.Client) -> None:
    _unauthenticated(anonymous.get("/v1/credentials/x"), NO_HEADER)


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-thiqa-key",
        "thq_0123456789abcdef_x",
    ],
)
def test_401_says_the_header_is_malformed(anonymous: httpx.Client, header: str) -> None:
    response = anonymous.get("/v1/credentials/x", headers={"Authorization": header})
    _unauthenticated(response, MALFORMED)


def test_401_says_the_key_is_not_accepted_alike_for_unknown_and_wrong_keys(
    anonymous: httpx.Client, api_key: str
) -> None:
    prefix, key_id, _secret = api_key.split("_", 2)
    unknown_id = f"{prefix}_{'0' * 16}_{'A' * 43}"
    wrong_secret = f"{prefix}_{key_id}_{'A' * 43}"
    for key in (unknown_id, wrong_secret):
        response = anonymous.get("/v1/credentials/x", headers={"Authorization": f"Bearer {key}"})
        _unauthenticated(response, NOT_ACCEPTED)


def test_a_presentation_request_for_an_untrusted_type_names_the_trusted_ones(
    http: httpx.Client, settings: Settings, redis_client: redis.Redis
) -> None:
    response = http.post(
        "/v1/presentation-requests",
        json={
            "claims": [["given_name"]],
            "purpose": "Age check",
            "vct": "https://nowhere.example/types/unknown",
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "unsupported_vct"
    assert body["detail"] == (
        "No issuer this service trusts issues that type; "
        f"it can ask for {settings.national_id_vct}."
    )
    assert list(redis_client.scan_iter(match=f"{settings.redis_prefix}:{{vp:*")) == []


# -- the OAuth style of the wallet endpoints, exactly as the specs shape it -----------------


def test_a_token_request_that_is_not_a_form_is_an_oauth_error(anonymous: httpx.Client) -> None:
    response = anonymous.post("/token", json={"grant_type": "x"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The body must be application/x-www-form-urlencoded.",
    }


def test_a_credential_request_without_a_token_is_invalid_token_with_its_challenge(
    anonymous: httpx.Client,
) -> None:
    response = anonymous.post("/credential", json={})
    assert response.status_code == 401
    description = "The access token is missing, unknown, expired or used."
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{description}"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"error": "invalid_token", "error_description": description}


def test_a_direct_post_error_carries_the_oauth_error_and_thiqa_code(
    anonymous: httpx.Client,
) -> None:
    unknown = "A" * 22
    response = anonymous.post(
        f"/presentation-responses/{unknown}",
        content=b"state=x&vp_token=%7B%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "No presentation request with this id.",
        "code": "presentation_request_not_found",
    }
    malformed = anonymous.post(
        f"/presentation-responses/{unknown}",
        content=b"state=x&state=y",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert malformed.status_code == 400
    assert malformed.json() == {
        "error": "invalid_request",
        "error_description": "The body must be a application/x-www-form-urlencoded form, "
        "each parameter once.",
        "code": "malformed_response",
    }
