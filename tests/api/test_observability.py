"""Operations over real HTTP: request ids, JSON logs, metrics, the audit trail, security
headers and CORS, and that none of them ever holds a citizen's personal data."""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from service.api.app import create_app
from service.api.headers import API_CSP, DOCS_CSP
from service.api.server import BackgroundServer
from service.logs import JsonFormatter, RequestContext, current_request
from service.settings import Settings
from service.store.audit import AuditEntry
from service.store.clients import Scope
from service.store.connection import KeySpace
from tests.conftest import add_client

from .conftest import AUDIENCE, NONCE, codes

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")

# A citizen whose every value is distinctive, so finding it anywhere is unambiguous.
UNIQUE_CITIZEN: dict[str, Any] = {
    "given_name": "Zyxwvut-Unique",
    "given_name#ar": "زيكسوڤت",
    "family_name": "Qwertyuiop-Distinct",
    "family_name#ar": "كويرتيوب",
    "birthdate": "1987-06-05",
    "place_of_birth": {"locality": "Xanaduville", "locality#ar": "زانادو", "country": "MA"},
    "sex": "M",
    "national_id": "QJ918273",
    "nationality": "MA",
}
PERSONAL_VALUES = (
    "Zyxwvut-Unique",
    "زيكسوڤت",
    "Qwertyuiop-Distinct",
    "كويرتيوب",
    "1987-06-05",
    "Xanaduville",
    "زانادو",
    "QJ918273",
)


@pytest.fixture
def citizen() -> dict[str, Any]:
    # Overrides tests/api/conftest.py: every credential issued in this module is this one.
    return json.loads(json.dumps(UNIQUE_CITIZEN))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log line the process writes meanwhile, at every level, as the JSON the server
    would print: Thiqa's loggers, uvicorn's, and any library's."""
    collect = _Collect()
    root, uvicorn_log = logging.getLogger(), logging.getLogger("uvicorn")
    saved = root.level
    root.addHandler(collect)
    uvicorn_log.addHandler(collect)
    root.setLevel(logging.DEBUG)
    try:
        yield collect.lines
    finally:
        root.setLevel(saved)
        root.removeHandler(collect)
        uvicorn_log.removeHandler(collect)


def _records(lines: list[str], logger: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, lines) if r["logger"] == logger]


def _audit(redis_client: redis.Redis, settings: Settings) -> list[AuditEntry]:
    """Both audit streams (events and verifications), merged in the order the entries were
    made: their times (verifications are written in batches, so a later id may be older)."""
    keys = KeySpace(settings.redis_prefix)
    entries = [
        AuditEntry.from_stream(i, f)
        for stream in (keys.audit_stream(), keys.audit_verifications())
        for i, f in redis_client.xrange(stream)
    ]
    entries.sort(key=lambda e: (e.time, tuple(int(part) for part in e.id.split("-"))))
    return entries


def _audit_when(
    redis_client: redis.Redis, settings: Settings, ready: Callable[[list[AuditEntry]], bool]
) -> list[AuditEntry]:
    """The audit entries once ``ready`` holds: verification entries are written just after
    the response, so a test may ask before they are there."""
    deadline = time.monotonic() + 5
    while True:
        entries = _audit(redis_client, settings)
        if ready(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


def _metrics(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def _dump_prefix(redis_client: redis.Redis, prefix: str) -> bytes:
    """Every key under ``prefix`` and its whole value, whatever the type, as one blob."""
    parts: list[bytes] = []
    for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
        parts.append(key)
        kind = redis_client.type(key)
        if kind == b"string":
            parts.append(redis_client.get(key) or b"")
        elif kind == b"hash":
            parts.extend(b for kv in redis_client.hgetall(key).items() for b in kv)
        elif kind == b"set":
            parts.extend(redis_client.smembers(key))
        elif kind == b"stream":
            parts.extend(
                b for _id, fields in redis_client.xrange(key) for kv in fields.items() for b in kv
            )
        elif kind == b"zset":
            parts.extend(m for m, _s in redis_client.zrange(key, 0, -1, withscores=True))
        elif kind == b"list":
            parts.extend(redis_client.lrange(key, 0, -1))
        else:
            raise AssertionError(f"unexpected {kind!r} at {key!r}")
    return b"\n".join(parts)


# --- Request ids -------------------------------------------------------------------------


def test_every_response_gets_a_fresh_request_id(anonymous: httpx.Client) -> None:
    first, second = anonymous.get("/health"), anonymous.get("/nowhere")
    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert GENERATED_ID.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["abc-123_x.Y", "a" * 64, "7"])
def test_a_well_formed_request_id_is_kept(anonymous: httpx.Client, given: str) -> None:
    response = anonymous.get("/health", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given",
    [
        "",
        "a" * 65,
        "has space",
        "semi;colon",
        "<script>",
        "id/../x",
        "ü-umlaut",
        "Zyxwvut-Unique QJ918273",
    ],
)
def test_a_malformed_request_id_is_replaced(
    anonymous: httpx.Client, log_lines: list[str], given: str
) -> None:
    response = anonymous.get("/health", headers={"X-Request-ID": given.encode()})
    answered = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(answered)
    [access] = _records(log_lines, "thiqa.access")
    assert access["request_id"] == answered
    if given:
        assert all(given not in line for line in log_lines)


# --- Logs --------------------------------------------------------------------------------


def test_one_json_access_line_per_request_with_id_client_and_timing(
    http: httpx.Client, log_lines: list[str]
) -> None:
    response = http.get("/v1/credentials/000000000000.AAAAAAAAAAAAAAAAAAAAAA")
    assert response.status_code == 404
    [access] = _records(log_lines, "thiqa.access")
    assert access["request_id"] == response.headers["x-request-id"]
    assert access["client"] == "test-app"
    assert access["method"] == "GET"
    assert access["path"] == "/v1/credentials/000000000000.AAAAAAAAAAAAAAAAAAAAAA"
    assert access["route"] == "/v1/credentials/{credential_id}"
    assert access["status"] == 404
    assert access["level"] == "info"
    assert 0 < access["duration_ms"] < 5000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access["time"])


def test_an_offer_url_is_logged_by_its_template_never_its_id(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any], log_lines: list[str]
) -> None:
    offer = http.post("/v1/credential-offers", json={"claims": citizen, "tx_code": False})
    assert offer.status_code == 201
    uri = offer.json()["credential_offer_uri"]
    offer_id = uri.rsplit("/", 1)[1]
    assert anonymous.get(uri).status_code == 200
    fetched = [
        r
        for r in _records(log_lines, "thiqa.access")
        if r["route"] == "/credential-offers/{offer_id}"
    ]
    assert len(fetched) == 1
    assert fetched[0]["path"] == "/credential-offers/{offer_id}"
    # The test's own httpx client logs the URL it fetched; the server must not.
    server_lines = [
        line for line in log_lines if '"logger":"thiqa' in line or '"logger":"uvicorn' in line
    ]
    assert server_lines
    assert not any(offer_id in line for line in server_lines)


def test_an_unauthenticated_request_is_logged_without_a_client(
    anonymous: httpx.Client, log_lines: list[str]
) -> None:
    assert anonymous.post("/v1/verify", json={"credential": "x"}).status_code == 401
    [access] = _records(log_lines, "thiqa.access")
    assert access["status"] == 401
    assert "client" not in access


def test_json_formatter_keeps_exception_type_and_place_but_not_its_message() -> None:
    try:
        raise ValueError("national_id QJ918273 is wrong")
    except ValueError:
        record = logging.LogRecord(
            "thiqa.api",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("here",),
            exc_info=__import__("sys").exc_info(),
        )
    record.status = 500
    token = current_request.set(RequestContext(request_id="req-7", client="tax-portal"))
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        current_request.reset(token)
    assert line["message"] == "failed here"
    assert line["request_id"] == "req-7"
    assert line["client"] == "tax-portal"
    assert line["status"] == 500
    assert line["exc_type"] == "ValueError"
    assert any("test_observability.py" in frame for frame in line["exc_frames"])
    assert "QJ918273" not in json.dumps(line)


@contextmanager
def _serving(app: FastAPI, settings: Settings) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "server did not start"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield settings.issuer_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_an_unexpected_exception_is_a_500_problem_with_headers_and_no_message_logged(
    settings: Settings, log_lines: list[str]
) -> None:
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("given_name Zyxwvut-Unique broke it")

    app.add_api_route("/boom", boom, methods=["GET"])
    with _serving(app, settings) as url:
        response = httpx.get(f"{url}/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "Zyxwvut" not in response.text
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == API_CSP
    [error] = [r for r in _records(log_lines, "thiqa.api") if r["level"] == "error"]
    assert error["exc_type"] == "RuntimeError"
    assert error["request_id"] == "boom-1"
    [access] = _records(log_lines, "thiqa.access")
    assert access["status"] == 500
    assert all("Zyxwvut" not in line for line in log_lines)


# --- No personal data anywhere -----------------------------------------------------------


def test_no_personal_value_reaches_logs_audit_or_redis(
    http: httpx.Client,
    log_lines: list[str],
    issued: dict[str, Any],
    present: Callable[..., str],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    cid = issued["credential_id"]
    everything = tuple(name for name in UNIQUE_CITIZEN if not name.startswith("place"))
    presentation = present(
        (*everything, ("place_of_birth", "locality"), ("place_of_birth", "locality#ar"))
    )
    verdict = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert verdict["valid"] is True
    assert verdict["claims"]["given_name"] == "Zyxwvut-Unique"  # it was really disclosed
    for action in ("suspend", "reinstate", "revoke"):
        assert http.post(f"/v1/credentials/{cid}/{action}").status_code == 200
    revoked = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert codes(revoked) == ["revoked"]
    # Refusals that quote claims in their input: bad claims, a schema error, a forgery.
    bad = dict(UNIQUE_CITIZEN, birthdate="2999-01-01")
    assert http.post("/v1/credentials", json={"claims": bad}).status_code == 422
    assert (
        http.post(
            "/v1/credentials", json={"claims": UNIQUE_CITIZEN, "extra": "QJ918273"}
        ).status_code
        == 422
    )
    forged = presentation.replace(presentation.split(".")[1][:8], "AAAAAAAA", 1)
    assert http.post("/v1/verify", json={"credential": forged}).json()["valid"] is False

    entries = _audit_when(
        redis_client, settings, lambda es: sum(e.action == "credential.verified" for e in es) == 2
    )
    # The forgery's verdict is counted, not audited: its signature never held.
    assert [e.action for e in entries] == [
        "credential.issued",
        "credential.verified",
        "credential.suspended",
        "credential.reinstated",
        "credential.revoked",
        "credential.verified",
    ]
    access = _records(log_lines, "thiqa.access")
    assert len(access) == 9  # the issuance and every request above are logged...

    for value in PERSONAL_VALUES:  # ...and no value of the citizen is in any of it
        escaped = json.dumps(value)[1:-1]
        for line in log_lines:
            assert value not in line
            assert escaped not in line
        for entry in entries:
            assert value not in repr(entry)
        assert value.encode() not in _dump_prefix(redis_client, settings.redis_prefix)


# --- Audit trail -------------------------------------------------------------------------


def test_issuance_and_status_changes_are_audited_with_client_and_request_id(
    http: httpx.Client,
    citizen: dict[str, Any],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    issued = http.post(
        "/v1/credentials", json={"claims": citizen}, headers={"X-Request-ID": "issue-1"}
    )
    assert issued.status_code == 201
    cid = issued.json()["credential_id"]
    request_ids = ["issue-1"]
    for action in ("suspend", "reinstate", "revoke"):
        response = http.post(f"/v1/credentials/{cid}/{action}")
        request_ids.append(response.headers["x-request-id"])
    refused = http.post(f"/v1/credentials/{cid}/reinstate")
    assert refused.status_code == 409  # refused: not recorded

    entries = _audit(redis_client, settings)
    assert [
        (e.action, e.credential_id, e.client, e.via, e.result, e.request_id) for e in entries
    ] == [
        ("credential.issued", cid, "test-app", "api", ("ok",), request_ids[0]),
        ("credential.suspended", cid, "test-app", "api", ("ok",), request_ids[1]),
        ("credential.reinstated", cid, "test-app", "api", ("ok",), request_ids[2]),
        ("credential.revoked", cid, "test-app", "api", ("ok",), request_ids[3]),
    ]
    assert entries[0].vct == settings.national_id_vct
    assert entries[0].kid
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e.time) for e in entries)


def test_verifications_are_audited_with_issuer_type_and_codes_only(
    http: httpx.Client,
    issued: dict[str, Any],
    present: Callable[..., str],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    good = http.post(
        "/v1/verify", json={"credential": present(), "nonce": NONCE, "audience": AUDIENCE}
    )
    junk = http.post("/v1/verify", json={"credential": "not-a-credential"})
    assert good.json()["valid"] is True
    assert codes(junk.json()) == ["malformed"]

    entries = [
        e
        for e in _audit_when(redis_client, settings, lambda es: len(es) == 2)
        if e.action == "credential.verified"
    ]
    by_request = {e.request_id: e for e in entries}
    valid = by_request[good.headers["x-request-id"]]
    assert (valid.client, valid.via, valid.result) == ("test-app", "api", ("valid",))
    assert (valid.issuer, valid.vct) == (settings.issuer_url, settings.national_id_vct)
    assert valid.credential_id == ""  # a presentation does not carry it; not looked up
    # Garbage names no issuer: counted, never written (issue 9.7).
    assert junk.headers["x-request-id"] not in by_request
    assert _value(_metrics(http), "thiqa_verifications_unaudited_total") == 1
    keys = KeySpace(settings.redis_prefix)
    assert redis_client.xlen(keys.audit_verifications()) == 1


@pytest.mark.slow
def test_junk_verifications_cannot_push_a_revocation_out_of_the_audit_trail(
    settings: Settings, citizen: dict[str, Any], redis_client: redis.Redis
) -> None:
    """Issue 9.7: 400 junk verifications and 400 genuine ones against a trail kept to 100
    entries; the revocation entry stays."""
    settings = settings.model_copy(update={"audit_max_entries": 100})
    key = add_client(settings, "app", frozenset(Scope))
    keys = KeySpace(settings.redis_prefix)
    with (
        BackgroundServer(settings) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http,
    ):
        issued = http.post("/v1/credentials", json={"claims": citizen}).json()
        cid = issued["credential_id"]
        assert http.post(f"/v1/credentials/{cid}/revoke").status_code == 200
        for n in range(400):
            junk = http.post("/v1/verify", json={"credential": f"junk~{n}~"})
            assert junk.json()["valid"] is False
            revoked = http.post("/v1/verify", json={"credential": issued["credential"]})
            assert [e["code"] for e in revoked.json()["errors"]] == ["revoked"]
        deadline = time.monotonic() + 5
        while _value(_metrics(http), "thiqa_audit_write_failures_total") == 0 and (
            redis_client.xlen(keys.audit_verifications()) < 100
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert _value(_metrics(http), "thiqa_verifications_unaudited_total") == 400
    events = [AuditEntry.from_stream(i, f) for i, f in redis_client.xrange(keys.audit_stream())]
    assert [(e.action, e.credential_id) for e in events] == [
        ("credential.issued", cid),
        ("credential.revoked", cid),
    ]
    verified = redis_client.xrange(keys.audit_verifications())
    assert 100 <= len(verified) < 400  # trimmed, approximately, to its own limit
    assert all(AuditEntry.from_stream(i, f).result == ("revoked",) for i, f in verified)


@pytest.fixture
def no_xadd_user(redis_client: redis.Redis, redis_url: str) -> Iterator[str]:
    """A Redis URL whose user may do everything but XADD: audit writes fail, nothing else."""
    if "@" in redis_url:
        pytest.skip("THIQA_TEST_REDIS_URL carries its own credentials")
    user = f"noaudit{time.monotonic_ns()}"
    redis_client.execute_command(
        "ACL", "SETUSER", user, "on", ">pw-not-secret", "~*", "&*", "+@all", "-xadd"
    )
    scheme, rest = redis_url.split("://", 1)
    try:
        yield f"{scheme}://{user}:pw-not-secret@{rest}"
    finally:
        redis_client.execute_command("ACL", "DELUSER", user)


def test_a_failed_audit_write_keeps_the_answer_and_is_logged_and_counted(
    settings: Settings,
    no_xadd_user: str,
    citizen: dict[str, Any],
    redis_client: redis.Redis,
    log_lines: list[str],
) -> None:
    settings = settings.with_redis(no_xadd_user)
    key = add_client(settings, "app", frozenset(Scope))
    with (
        BackgroundServer(settings) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http,
    ):
        issued = http.post("/v1/credentials", json={"claims": citizen})
        assert issued.status_code == 201  # the credential exists: its 201 stands
        cid = issued.json()["credential_id"]
        assert http.get(f"/v1/credentials/{cid}").json()["status"] == "valid"
        verdict = http.post("/v1/verify", json={"credential": issued.json()["credential"]})
        assert verdict.status_code == 200
        assert verdict.json()["valid"] is True  # never depends on the audit write
        deadline = time.monotonic() + 5
        while _value(_metrics(http), "thiqa_audit_write_failures_total") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert _value(_metrics(http), "thiqa_audit_write_failures_total") == 2
    assert not redis_client.exists(KeySpace(settings.redis_prefix).audit_stream())
    assert not redis_client.exists(KeySpace(settings.redis_prefix).audit_verifications())
    failures = [r for r in _records(log_lines, "thiqa.audit") if r["level"] == "error"]
    assert [f["audit_action"] for f in failures] == ["credential.issued", "credential.verified"]
    assert failures[0]["credential_id"] == cid
    assert failures[0]["request_id"] == issued.headers["x-request-id"]
    assert failures[1]["request_id"] == verdict.headers["x-request-id"]


# --- Metrics -----------------------------------------------------------------------------


def test_metrics_count_verdicts_and_requests_exactly(
    http: httpx.Client,
    issued: dict[str, Any],
    present: Callable[..., str],
) -> None:
    presentation = present()
    body = {"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    assert http.post("/v1/verify", json=body).json()["valid"] is True
    assert http.post(f"/v1/credentials/{issued['credential_id']}/revoke").status_code == 200
    assert codes(http.post("/v1/verify", json=body).json()) == ["revoked"]

    metrics = _metrics(http)
    assert _value(metrics, "thiqa_verifications_total", result="valid") == 1
    assert _value(metrics, "thiqa_verifications_total", result="invalid") == 1
    errors = {
        dict(labels)["code"]: value
        for (name, labels), value in metrics.items()
        if name == "thiqa_verification_errors_total"
    }
    assert errors == {"revoked": 1}
    assert (
        _value(
            metrics, "thiqa_http_requests_total", method="POST", route="/v1/verify", status="200"
        )
        == 2
    )
    assert (
        _value(
            metrics,
            "thiqa_http_requests_total",
            method="POST",
            route="/v1/credentials/{credential_id}/revoke",
            status="200",
        )
        == 1
    )
    assert (
        _value(
            metrics, "thiqa_http_request_duration_seconds_count", method="POST", route="/v1/verify"
        )
        == 2
    )
    assert _value(metrics, "thiqa_store_unavailable_total") == 0
    # Route templates only: no credential id ever becomes a label value.
    assert issued["credential_id"] not in http.get("/metrics").text


def test_unmatched_paths_share_one_label(anonymous: httpx.Client) -> None:
    for n in range(3):
        assert anonymous.get(f"/no/such/{n}").status_code == 404
    metrics = _metrics(anonymous)
    assert (
        _value(metrics, "thiqa_http_requests_total", method="GET", route="unmatched", status="404")
        == 3
    )
    assert "/no/such" not in anonymous.get("/metrics").text


def test_metrics_is_not_in_the_api_schema(anonymous: httpx.Client) -> None:
    assert "/metrics" not in anonymous.get("/openapi.json").json()["paths"]


def test_each_app_counts_alone(settings: Settings) -> None:
    first, second = create_app(settings), create_app(settings)
    assert first.state.metrics.registry is not second.state.metrics.registry


# --- Security headers --------------------------------------------------------------------

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": API_CSP,
}


def test_security_headers_on_every_kind_of_answer(
    http: httpx.Client, anonymous: httpx.Client, issued: dict[str, Any]
) -> None:
    answers = {
        "ok": anonymous.get("/health"),
        "json schema": anonymous.get("/openapi.json"),
        "401": anonymous.post("/v1/verify", json={"credential": "x"}),
        "404": anonymous.get("/nowhere"),
        "405": anonymous.delete("/health"),
        "413": http.post(
            "/v1/verify", content=b"x" * 70_000, headers={"Content-Type": "application/json"}
        ),
        "422": http.post("/v1/credentials", json={"claims": {}}),
        "201": http.post("/v1/credentials", json={"claims": UNIQUE_CITIZEN}),
        "metrics": anonymous.get("/metrics"),
    }
    for name, response in answers.items():
        for header, value in SECURITY.items():
            assert response.headers.get(header) == value, (name, header)
        assert response.headers.get("cache-control") == "no-store", name
    assert answers["413"].status_code == 413
    assert answers["405"].status_code == 405


def test_routes_that_choose_caching_keep_it(
    anonymous: httpx.Client, issued: dict[str, Any]
) -> None:
    status_list = anonymous.get(urlsplit(issued["status"]["status_list"]["uri"]).path)
    metadata = anonymous.get("/.well-known/jwt-vc-issuer")
    for response in (status_list, metadata):
        assert response.status_code == 200
        assert response.headers["cache-control"].startswith("public, max-age=")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == API_CSP


class _Assets(HTMLParser):
    """The URLs a documentation page loads: scripts, stylesheets, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.images: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.scripts.append(found["src"] or "")
            else:
                self._in_script = True
        elif tag == "link" and found.get("href"):
            rel = found.get("rel") or ""
            (self.styles if "stylesheet" in rel else self.images).append(found["href"] or "")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def _directive(csp: str, name: str) -> list[str]:
    for part in csp.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_get_a_policy_that_allows_what_they_load(
    anonymous: httpx.Client, path: str
) -> None:
    response = anonymous.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert csp == DOCS_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assets = _Assets()
    assets.feed(response.text)
    assert assets.scripts  # it loads Swagger UI or ReDoc from somewhere...

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"

    # ...and every origin it loads from is one the policy names for that kind of asset.
    for url in assets.scripts:
        assert origin(url) in _directive(csp, "script-src"), url
    for url in assets.styles:
        assert origin(url) in _directive(csp, "style-src"), url
    for url in assets.images:
        assert origin(url) in _directive(csp, "img-src"), url
    if assets.inline_scripts:
        assert "'unsafe-inline'" in _directive(csp, "script-src")
    assert "'self'" in _directive(csp, "connect-src")  # to fetch /openapi.json
    assert _directive(csp, "frame-ancestors") == ["'none'"]


def test_the_docs_policy_is_for_the_docs_pages_only(anonymous: httpx.Client) -> None:
    for path in ("/docs/other", "/redoc/x", "/openapi.json", "/health"):
        assert anonymous.get(path).headers["content-security-policy"] == API_CSP, path


# --- CORS --------------------------------------------------------------------------------


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def test_cors_is_closed_by_default(anonymous: httpx.Client) -> None:
    origin = {"Origin": "https://portal.example.ma"}
    simple = anonymous.get("/health", headers=origin)
    preflight = anonymous.options(
        "/v1/verify",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert simple.status_code == 200
    assert _cors_headers(simple) == {}
    assert preflight.status_code == 405
    assert _cors_headers(preflight) == {}


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[httpx.Client]:
    opened = Settings(
        **{
            **settings.model_dump(),
            "redis_url": settings.redis_url,
            "cors_origins": "https://portal.example.ma, http://localhost:3000",
        }
    )
    with (
        BackgroundServer(opened) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        yield client


def test_cors_opens_to_the_configured_origins_only(cors_client: httpx.Client) -> None:
    allowed = cors_client.get("/health", headers={"Origin": "https://portal.example.ma"})
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.ma"
    assert "access-control-allow-credentials" not in allowed.headers
    local = cors_client.get("/health", headers={"Origin": "http://localhost:3000"})
    assert local.headers["access-control-allow-origin"] == "http://localhost:3000"
    for other in (
        "https://evil.example",
        "https://portal.example.ma.evil.example",
        "http://portal.example.ma",
        "null",
    ):
        response = cors_client.get("/health", headers={"Origin": other})
        assert "access-control-allow-origin" not in response.headers, other

    preflight = cors_client.options(
        "/v1/verify",
        headers={
            "Origin": "https://portal.example.ma",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://portal.example.ma"
    assert set(preflight.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert preflight.headers["x-content-type-options"] == "nosniff"
    refused = [
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        {"Origin": "https://portal.example.ma", "Access-Control-Request-Method": "DELETE"},
        {
            "Origin": "https://portal.example.ma",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    ]
    for headers in refused:
        response = cors_client.options("/v1/verify", headers=headers)
        assert response.status_code == 400, headers
        assert "access-control-allow-origin" not in response.headers or (
            headers["Origin"] != "https://evil.example"
        ), headers


@pytest.mark.parametrize(
    "value", ["*", "https://a.example/path", "portal.example.ma", "https://a.example, *"]
)
def test_cors_origins_must_be_exact(value: str, settings: Settings) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        Settings(cors_origins=value)


#: Path parameters whose value grants access (an offer redeems a credential; a presentation
#: request id lets a wallet answer and a relying party read the verdict).
_SECRET_PARAMETERS = ("{offer_id}", "{request_id}")


def _raw_request(server: BackgroundServer, method: str, path: str, api_key: str | None) -> int:
    """One request over http.client, which logs nothing itself (httpx would log the URL in
    this very process); an event stream is left after its headers."""
    connection = http.client.HTTPConnection(server.settings.host, server.settings.port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        connection.request(method, path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_no_offer_or_request_id_reaches_any_log_line(
    server: BackgroundServer,
    http: httpx.Client,
    api_key: str,
    citizen: dict[str, Any],
    log_lines: list[str],
) -> None:
    offer = http.post("/v1/credential-offers", json={"claims": citizen, "tx_code": False})
    assert offer.status_code == 201
    offer_id = offer.json()["offer_id"]
    request = http.post(
        "/v1/presentation-requests",
        json={"claims": [["given_name"]], "purpose": "Ouverture d'un compte"},
    )
    assert request.status_code == 201
    request_id = request.json()["request_id"]
    templates = (
        "/v1/credential-offers/{offer_id}",
        "/credential-offers/{offer_id}",
        "/v1/presentation-requests/{request_id}",
        "/v1/presentation-requests/{request_id}/events",
        "/presentation-requests/{request_id}",
        "/presentation-responses/{request_id}",
    )
    answers: set[int] = set()
    for key in (api_key, None):
        for method in ("GET", "POST", "DELETE"):
            for template in templates:
                path = template.replace("{offer_id}", offer_id).replace("{request_id}", request_id)
                # The path as routed, a trailing slash (a redirect), a longer path (no route),
                # another case (no route), a query string.
                for variant in (path, path + "/", path + "/x", path.upper(), path + "?wait=0"):
                    answers.add(_raw_request(server, method, variant, key))
    assert {200, 307, 404, 405} <= answers
    # Every route of the app whose path carries such an id was driven above.
    app_routes = {
        path
        for route in create_app(server.settings).routes
        if any(part in (path := getattr(route, "path", "")) for part in _SECRET_PARAMETERS)
    }
    assert app_routes <= set(templates)
    assert len(_records(log_lines, "thiqa.access")) >= 2 * 3 * len(templates) * 5
    assert [line for line in log_lines if offer_id in line or request_id in line] == []
