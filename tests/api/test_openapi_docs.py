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

#: Wallet-facing endpoints that answer OAuth-style errors (README, "Errors here are OAuth's").
OAUTH_STYLE = {
    ("post", "/token"),
    ("post", "/credential"),
    ("post", "/presentation-responses/{request_id}"),
}
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
            if (method, path) in OAUTH_STYLE and status in ("400", "401"):
                schema = content["application/json"]["schema"]
                assert schema["$ref"] != problem_ref, f"{method} {path} {status}"
            else:
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
