"""The API documentation a developer reads at /docs: every operation says what it does, what
it answers and how it fails.

``test_schema_fuzz.py`` proves the answers match the document; this proves the document says
enough: a summary and a description for each operation, a schema for its success body, and
its errors (problem details with a stable ``code``; OAuth's own shape on the three wallet
endpoints that speak OAuth).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.errors import BodyStyle, ThiqaError, wire_errors

#: Wallet-facing endpoints that answer OAuth-style errors (README, "Errors here are OAuth's").
OAUTH_STYLE = {
    ("post", "/token"),
    ("post", "/credential"),
    ("post", "/presentation-responses/{request_id}"),
}
#: The relying party's page hands over a Digital Credentials API answer: an API-key endpoint
#: (problems for 401, 403, 404...) whose refusals of the answer itself are the response
#: endpoint's, OAuth-style.
DC_API_RESPONSE = ("post", "/v1/presentation-requests/{request_id}/dc-api-response")
PROBLEM = "application/problem+json"


@pytest.fixture
def spec(anonymous: httpx.Client) -> dict[str, Any]:
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def test_the_docs_pages_load(anonymous: httpx.Client) -> None:
    for page in ("/docs", "/redoc"):
        response = anonymous.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in response.text


def test_every_operation_has_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    assert len(operations(spec)) >= 20
    for method, path, operation in operations(spec):
        summary = operation.get("summary", "")
        assert summary, f"{method} {path}"
        assert len(operation.get("description", "")) > len(summary), f"{method} {path}"


def test_every_success_answer_has_a_schema(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, f"{method} {path}"
        for status, response in successes.items():
            content = response.get("content")
            assert content, f"{method} {path} {status}"
            for media, body in content.items():
                assert body.get("schema"), f"{method} {path} {status} {media}"


def test_every_error_is_documented_with_its_shape(spec: dict[str, Any]) -> None:
    problem_ref = "#/components/schemas/Problem"
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        assert PROBLEM in responses["default"]["content"], f"{method} {path}"
        errors = {s: r for s, r in responses.items() if s[:1] in ("4", "5")}
        if "security" in operation:  # needs an API key
            assert {"401", "403", "429"} <= set(errors), f"{method} {path}"
        for status, response in errors.items():
            content = response["content"]
            assert response.get("description"), f"{method} {path} {status}"
            json_schema = content.get("application/json", {}).get("schema", {})
            if (method, path) in OAUTH_STYLE and status in ("400", "401"):
                assert json_schema["$ref"] != problem_ref, f"{method} {path} {status}"
            if json_schema.get("$ref", "").endswith(("/OAuthErrorBody", "/WalletErrorBody")):
                assert (method, path) in {*OAUTH_STYLE, DC_API_RESPONSE}, f"{method} {path}"
                # The DC API answer endpoint reads a JSON body: its invalid_json is a problem.
                expected = ["application/json"]
                if (method, path) == DC_API_RESPONSE and status == "400":
                    expected.append(PROBLEM)
                assert list(content) == expected, f"{method} {path} {status}"
            else:
                assert list(content) == [PROBLEM], f"{method} {path} {status}"
                assert content[PROBLEM]["schema"]["$ref"] == problem_ref, f"{method} {path}"


def test_oauth_style_endpoints_say_so(spec: dict[str, Any]) -> None:
    for method, path in OAUTH_STYLE:
        operation = spec["paths"][path][method]
        assert "400" in operation["responses"], path
        schema_name = operation["responses"]["400"]["content"]["application/json"]["schema"]
        assert schema_name["$ref"].rsplit("/", 1)[1] in ("OAuthErrorBody", "WalletErrorBody")


def test_body_errors_are_documented_only_where_there_is_a_body(spec: dict[str, Any]) -> None:
    """400 invalid_json and 413 come from reading a request body: an operation without one
    does not list them; every operation with one (JSON or form) lists 413, and 400."""
    credential = spec["paths"]["/v1/credentials/{credential_id}"]["get"]["responses"]
    assert "400" not in credential
    assert "413" not in credential
    verify = spec["paths"]["/v1/verify"]["post"]["responses"]
    assert "invalid_json" in verify["400"]["description"]
    assert verify["400"]["content"][PROBLEM]["schema"]["$ref"] == "#/components/schemas/Problem"
    assert "request_too_large" in verify["413"]["description"]
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), f"{method} {path}"
        else:
            assert "413" not in responses, f"{method} {path}"
            assert "invalid_json" not in responses.get("400", {}).get("description", ""), (
                f"{method} {path}"
            )


# -- the error side: a Problem schema that is true, an example per status --------------------


def _class_of(code: str, style: BodyStyle, status: int) -> type[ThiqaError]:
    found = [
        cls
        for cls in wire_errors()
        if cls.code == code
        and cls.style is style
        and cls.status == status
        and "code" in cls.__dict__  # a subclass keeping its parent's code is that error
    ]
    assert len(found) == 1, (code, style, status)
    return found[0]


def test_problem_code_is_an_enum_of_the_real_problem_codes(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    real = sorted({cls.code for cls in wire_errors() if cls.style is BodyStyle.PROBLEM})
    assert problem["properties"]["code"]["enum"] == real
    assert {"errors", "path", "retry_after"} <= set(problem["properties"])
    item = spec["components"]["schemas"]["ProblemItem"]
    assert set(item["properties"]) == {"loc", "type", "message", "limit"}


def test_the_wallet_error_bodies_enumerate_their_codes(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["OAuthErrorBody"]["properties"]["error"]["enum"] == [
        "credential_request_denied",
        "invalid_credential_request",
        "invalid_encryption_parameters",
        "invalid_grant",
        "invalid_nonce",
        "invalid_proof",
        "invalid_request",
        "invalid_token",
        "unknown_credential_configuration",
        "unsupported_grant_type",
    ]
    wallet = schemas["WalletErrorBody"]["properties"]
    assert wallet["error"]["enum"] == ["invalid_request", "temporarily_unavailable"]
    assert wallet["code"]["enum"] == [
        "decryption_failed",
        "encryption_required",
        "malformed_response",
        "nonce_replayed",
        "origin_mismatch",
        "presentation_rejected",
        "presentation_request_not_found",
        "request_expired",
        "response_too_large",
        "state_mismatch",
        "store_unavailable",
        "unsupported_encryption",
    ]


def test_every_error_response_has_correct_examples_of_its_own_status(
    spec: dict[str, Any],
) -> None:
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if not (status == "default" or status[:1] in ("4", "5")):
                continue
            where = f"{method} {path} {status}"
            for media, body in response["content"].items():
                examples = body.get("examples")
                assert examples, where
                assert "example" not in body, where
                for code, example in examples.items():
                    value = example["value"]
                    if media == PROBLEM:
                        expected = 500 if status == "default" else int(status)
                        cls = _class_of(code, BodyStyle.PROBLEM, expected)
                        assert value["code"] == code, where
                        assert value["status"] == expected, where
                        assert value["title"] == cls.title, where
                        assert value["type"] == f"https://thiqa.dev/problems/{code}", where
                    else:
                        cls = _class_of(code, BodyStyle.OAUTH, int(status))
                        assert value["error"] == (getattr(cls, "error", None) or code), where
                        assert value.get("code", code) == code, where
                        assert value["error_description"].isascii(), where


def test_each_error_response_shows_the_codes_it_names(spec: dict[str, Any]) -> None:
    offers = spec["paths"]["/v1/credential-offers/{offer_id}"]["get"]["responses"]
    assert list(offers["404"]["content"][PROBLEM]["examples"]) == ["offer_not_found"]
    verify = spec["paths"]["/v1/verify"]["post"]["responses"]
    unavailable = verify["503"]["content"][PROBLEM]["examples"]["status_unavailable"]["value"]
    assert unavailable["valid"] is False
    assert [e["code"] for e in unavailable["errors"]] == ["status_unavailable"]
    token = spec["paths"]["/token"]["post"]["responses"]["400"]["content"]["application/json"]
    assert list(token["examples"]) == ["invalid_request", "invalid_grant", "unsupported_grant_type"]
    answer = spec["paths"]["/presentation-responses/{request_id}"]["post"]["responses"]
    rejected = answer["400"]["content"]["application/json"]["examples"]["presentation_rejected"]
    assert rejected["value"]["error"] == "invalid_request"
    assert rejected["value"]["code"] == "presentation_rejected"


def test_a_json_body_operation_documents_415(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        body = operation.get("requestBody", {}).get("content", {})
        if "application/json" in body and path != "/credential":
            examples = operation["responses"]["415"]["content"][PROBLEM]["examples"]
            assert list(examples) == ["unsupported_media_type"], f"{method} {path}"
        else:
            assert "415" not in operation["responses"], f"{method} {path}"


def test_date_fields_are_date_time(spec: dict[str, Any]) -> None:
    seen = 0
    for name, schema in spec["components"]["schemas"].items():
        for field, definition in schema.get("properties", {}).items():
            if field.endswith("_at"):
                seen += 1
                variants = definition.get("anyOf", [definition])
                strings = [v for v in variants if v.get("type") == "string"]
                assert strings, f"{name}.{field}"
                assert all(v.get("format") == "date-time" for v in strings), f"{name}.{field}"
    assert seen >= 8
