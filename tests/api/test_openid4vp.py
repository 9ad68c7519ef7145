"""OpenID4VP presentation requests end to end, over real HTTP and real Redis.

A relying party creates a request; the test wallet (service.wallet.openid4vp) fetches it and
answers by direct_post with a key-bound presentation of a credential issued by
POST /v1/credentials; the relying party reads the verdict by GET, long-poll and SSE. Every
attack asserts its exact code, that the relying party sees no claim, and that Redis holds
nothing it should not.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from service.api.server import BackgroundServer, free_port
from service.core import holder
from service.core.encoding import b64url_decode
from service.core.keys import generate_signing_key, public_jwk
from service.core.x509 import certificate_hash, parse_x5c
from service.keyring.certificates import Pki
from service.settings import Settings
from service.store.clients import Scope
from service.wallet import openid4vp as wallet_vp
from service.wallet.store import Wallet
from tests.conftest import add_client

REQUESTED = [["given_name"], ["place_of_birth", "locality"]]
EXPECTED_CLAIMS = {"given_name": "Amina", "place_of_birth": {"locality": "Fès"}}
PURPOSE = "فتح حساب بنكي — ouverture d'un compte"
#: Values of the citizen's claims that no request in this module asks for.
UNREQUESTED_VALUES = ["El Idrissi", "الإدريسي", "1990-04-12", "ZZ104233", "فاس", "أمينة"]


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def holder_wallet(tmp_path: Path, http: httpx.Client, citizen: dict[str, Any]) -> Wallet:
    """A test wallet holding one national ID bound to its own key."""
    wallet = Wallet.open(tmp_path / "wallet.json")
    wallet.add_trust(trusted_root())  # the browser wallet's rule: the server's own root
    key = wallet.new_key()
    response = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(key.key)}
    )
    assert response.status_code == 201, response.text
    wallet.add(response.json()["credential"], key)
    wallet.save()
    return wallet


@pytest.fixture
def revocable_wallet(
    tmp_path: Path, http: httpx.Client, citizen: dict[str, Any]
) -> tuple[Wallet, str]:
    wallet = Wallet.open(tmp_path / "revocable.json")
    wallet.add_trust(trusted_root())
    key = wallet.new_key()
    response = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(key.key)}
    )
    assert response.status_code == 201, response.text
    wallet.add(response.json()["credential"], key)
    return wallet, response.json()["credential_id"]


#: Where the server under test keeps its keys: the test wallet trusts its development root
#: (the browser wallet's rule), read once the server has made it.
KEYS: list[Path] = []


@pytest.fixture(autouse=True)
def _trust_the_servers_root(settings: Settings) -> Any:
    KEYS[:] = [settings.keys_dir]
    yield
    KEYS[:] = []


def trusted_root() -> Any:
    return Pki(KEYS[0]).root()


def create(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    # These tests answer in the clear to exercise the protocol checks one by one; the
    # encrypted default is tested in tests/api/test_openid4vp_haip.py.
    body = {"claims": REQUESTED, "purpose": PURPOSE, "response_mode": "direct_post", **overrides}
    response = http.post("/v1/presentation-requests", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def status(http: httpx.Client, request_id: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"/v1/presentation-requests/{request_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def fetch(anonymous: httpx.Client, created: dict[str, Any]) -> wallet_vp.WalletRequest:
    return wallet_vp.fetch_request(
        anonymous, wallet_vp.parse_invocation(created["wallet_uri"]), trust=[trusted_root()]
    )


def post_answer(
    anonymous: httpx.Client,
    request: wallet_vp.WalletRequest,
    presentation: str | None = None,
    *,
    vp_token: Any = None,
    state: str | None = None,
) -> httpx.Response:
    if vp_token is None:
        vp_token = {"credential": [presentation]}
    token = vp_token if isinstance(vp_token, str) else json.dumps(vp_token)
    return anonymous.post(
        request.response_uri, data={"vp_token": token, "state": state or request.state or ""}
    )


def key_bound(
    wallet: Wallet,
    request: wallet_vp.WalletRequest,
    claims: tuple[Any, ...] = ("given_name", ("place_of_birth", "locality")),
    *,
    nonce: str | None = None,
    audience: str | None = None,
) -> str:
    stored = wallet.credentials()[0]
    return holder.present(
        stored.credential,
        claims,
        holder_key=wallet.key(stored.key_id),
        nonce=request.nonce if nonce is None else nonce,
        audience=request.client_id if audience is None else audience,
        now=int(time.time()),
    )


def redis_dump(redis_client: redis.Redis, prefix: str) -> str:
    """Every value under the test's key prefix, as text (UTF-8 and JSON-escaped forms both
    appear as written, so a search for either finds them)."""
    chunks: list[bytes] = []
    for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = redis_client.type(key)
        chunks.append(key)
        if kind == b"string":
            chunks.append(redis_client.get(key) or b"")
        elif kind == b"hash":
            for field, value in redis_client.hgetall(key).items():
                chunks += [field, value]
        elif kind == b"stream":
            for _, fields in redis_client.xrange(key):
                for field, value in fields.items():
                    chunks += [field, value]
        elif kind in (b"set", b"list", b"zset"):
            members = (
                redis_client.smembers(key)
                if kind == b"set"
                else redis_client.lrange(key, 0, -1)
                if kind == b"list"
                else redis_client.zrange(key, 0, -1)
            )
            chunks.extend(members)
    return b"\n".join(chunks).decode("utf-8", "replace")


def assert_nothing_of(dump: str, values: list[str]) -> None:
    for value in values:
        escaped = json.dumps(value)[1:-1]
        assert value not in dump, "a claim value reached Redis"
        assert escaped not in dump, "a claim value reached Redis"


def assert_failed(http: httpx.Client, request_id: str, *expected: str) -> dict[str, Any]:
    body = status(http, request_id)
    assert body["state"] == "failed"
    verdict = body["verdict"]
    assert verdict["valid"] is False
    assert verdict["claims"] is None
    assert [e["code"] for e in verdict["errors"]] == list(expected)
    return verdict


def rejected(response: httpx.Response, *expected: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["code"] == "presentation_rejected"
    assert [e["code"] for e in body["errors"]] == list(expected)


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = None, []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if event is not None:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))


# -- the request ----------------------------------------------------------------------------


def test_request_object_is_openid4vp_shaped(
    http: httpx.Client, anonymous: httpx.Client, settings: Settings
) -> None:
    created = create(http, expires_in=120)
    request_id = created["request_id"]
    response_uri = f"{settings.issuer_url}/presentation-responses/{request_id}"
    assert created["request_uri"] == f"{settings.issuer_url}/presentation-requests/{request_id}"
    leaf_hash = certificate_hash(
        Pki(settings.keys_dir).load_access(host="127.0.0.1", now=int(time.time())).leaf
    )
    assert created["client_id"] == "x509_hash:" + leaf_hash
    assert created["wallet_uri"].startswith("openid4vp://?client_id=x509_hash%3A")
    assert base64.b64decode(created["qr_png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert created["qr_svg"].lstrip().startswith("<svg")

    answer = anonymous.get(created["request_uri"])  # what a wallet does: no Accept needed
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/oauth-authz-req+jwt"
    assert answer.headers["cache-control"] == "no-store"
    head, body, signature = answer.text.split(".")
    header = json.loads(b64url_decode(head))
    assert header["alg"] == "ES256"
    assert header["typ"] == "oauth-authz-req+jwt"
    assert certificate_hash(parse_x5c(header["x5c"])[0]) == leaf_hash
    assert signature
    params = json.loads(b64url_decode(body))
    assert params["client_id"] == created["client_id"]
    assert params["response_type"] == "vp_token"
    assert params["response_mode"] == "direct_post"
    assert params["response_uri"] == response_uri
    assert params["nonce"] == created["nonce"]
    assert len(params["state"]) >= 22
    assert params["state"] != params["nonce"]
    assert "redirect_uri" not in params
    assert params["dcql_query"] == {
        "credentials": [
            {
                "id": "credential",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [settings.national_id_vct]},
                "claims": [{"path": ["given_name"]}, {"path": ["place_of_birth", "locality"]}],
            }
        ]
    }
    metadata = params["client_metadata"]
    assert metadata["purpose"] == PURPOSE
    assert metadata["client_name"] == "test-app"
    assert "ES256" in metadata["vp_formats_supported"]["dc+sd-jwt"]["kb-jwt_alg_values"]
    assert params["exp"] - params["iat"] in (120, 121)

    as_json = anonymous.get(created["request_uri"], headers={"Accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == params
    assert status(http, request_id) == {
        "request_id": request_id,
        "state": "pending",
        "verdict": None,
    }


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ("APPLICATION/JSON", True),
        ("application/json;q=0, application/statuslist+jwt", False),
        ("application/json;q=0", False),
        ("application/json; Q=0", False),
        ("application/json;q=0.9, application/oauth-authz-req+jwt;q=0.1", True),
        ("application/json, APPLICATION/OAUTH-AUTHZ-REQ+JWT", False),
        ("*/*", False),
    ],
)
def test_request_object_accept_is_read_case_insensitively_with_q_values(
    http: httpx.Client, anonymous: httpx.Client, accept: str, json_wanted: bool
) -> None:
    """The Request Object is the default; its parameters as JSON only when application/json
    is named, acceptable (q > 0) and preferred to the Request Object."""
    created = create(http)
    response = anonymous.get(created["request_uri"], headers={"Accept": accept})
    assert response.status_code == 200
    media = "application/json" if json_wanted else "application/oauth-authz-req+jwt"
    assert response.headers["content-type"] == media


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"purpose": "x" * 301}, "invalid_request"),
        ({"purpose": "pay \u202e100"}, "invalid_request"),
        ({"purpose": "line one\nline two"}, "invalid_request"),
        ({"purpose": "   "}, "invalid_request"),
        ({"claims": [["place_of_birth", 0]]}, "invalid_request"),
        ({"claims": [["nationalities", None]]}, "invalid_request"),
        ({"claims": [["exp"]]}, "invalid_request"),
        ({"claims": [["given_name"], ["given_name"]]}, "invalid_request"),
        ({"claims": [[]]}, "invalid_request"),
        ({"claims": [["_sd"]]}, "invalid_request"),
        ({"claims": [[f"c{i}"] for i in range(33)]}, "invalid_request"),
        ({"expires_in": 3601}, "invalid_request"),
        ({"expires_in": 0}, "invalid_request"),
        ({"vct": "https://nowhere.example/types/unknown"}, "unsupported_vct"),
        ({"surprise": True}, "invalid_request"),
    ],
)
def test_bad_requests_are_refused(
    http: httpx.Client,
    settings: Settings,
    redis_client: redis.Redis,
    change: dict[str, Any],
    code: str,
) -> None:
    response = http.post(
        "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": PURPOSE, **change}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert list(redis_client.scan_iter(match=f"{settings.redis_prefix}:{{vp:*")) == []


def test_purpose_in_any_script_at_full_length_is_kept_in_nfc(
    http: httpx.Client, anonymous: httpx.Client
) -> None:
    purpose = "\u200f" + ("ا" * 297) + "e\u0301"  # an RLM, Arabic, then a decomposed é
    created = create(http, purpose=purpose)
    params = anonymous.get(created["request_uri"], headers={"Accept": "application/json"})
    assert params.json()["client_metadata"]["purpose"] == "\u200f" + ("ا" * 297) + "é"
    assert create(http, purpose="ب" * 300)["request_id"]


def test_creating_needs_the_verify_scope(server: BackgroundServer, settings: Settings) -> None:
    key = add_client(settings, "issuer-only", frozenset({Scope.ISSUE}))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
        response = c.post(
            "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": PURPOSE}
        )
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    with httpx.Client(base_url=server.url) as nobody:
        assert (
            nobody.post(
                "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": PURPOSE}
            ).status_code
            == 401
        )


def test_unknown_request_ids(http: httpx.Client, anonymous: httpx.Client) -> None:
    for request_id in ("AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "x" * 64):
        fetched = anonymous.get(f"/presentation-requests/{request_id}")
        assert fetched.status_code == 404
        assert fetched.json()["code"] == "presentation_request_not_found"
        answered = anonymous.post(
            f"/presentation-responses/{request_id}", data={"vp_token": "{}", "state": "s"}
        )
        assert answered.status_code == 404
        assert answered.json()["code"] == "presentation_request_not_found"
        assert answered.json()["error"] == "invalid_request"
        read = http.get(f"/v1/presentation-requests/{request_id}")
        assert read.status_code == 404
        assert read.json()["code"] == "presentation_request_not_found"


@pytest.mark.parametrize(
    "request_id", ["x" * 65, "A" * 2000, "has%20space", "%7Btag%7D", "AAAAAAAAAAAAAAAAAAAAA%C3%BC"]
)
def test_malformed_request_ids_answer_like_unknown_ones(
    anonymous: httpx.Client, redis_client: redis.Redis, settings: Settings, request_id: str
) -> None:
    """A wallet gets the same answer, in the same shape, for an id too long or not an id at
    all as for an unknown one: no 422 problem from the framework on these public endpoints."""
    unknown = "AAAAAAAAAAAAAAAAAAAAAA"
    before = sorted(redis_client.scan_iter(match=f"{settings.redis_prefix}:*"))
    for method, path, form in (
        ("GET", "/presentation-requests", None),
        ("POST", "/presentation-responses", {"vp_token": "{}", "state": "s"}),
    ):
        expected = anonymous.request(method, f"{path}/{unknown}", data=form)
        got = anonymous.request(method, f"{path}/{request_id}", data=form)
        assert expected.status_code == 404, expected.text
        assert got.status_code == 404, (method, got.text)
        assert got.headers["content-type"] == expected.headers["content-type"]
        assert got.json() == expected.json()
        assert got.json()["code"] == "presentation_request_not_found"
    assert sorted(redis_client.scan_iter(match=f"{settings.redis_prefix}:*")) == before


# -- the happy path, three ways to read it ---------------------------------------------------


def test_wallet_answers_and_relying_party_reads_the_verdict(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet, settings: Settings
) -> None:
    created = create(http)
    result = wallet_vp.present(created["wallet_uri"], wallet=holder_wallet, http=anonymous)
    assert result.accepted, result.body
    assert result.body == {}
    assert result.request.purpose == PURPOSE
    assert result.disclosed == (("given_name",), ("place_of_birth", "locality"))

    body = status(http, created["request_id"])
    assert body["state"] == "completed"
    assert body["verdict"] == {
        "valid": True,
        "credential_status": "valid",
        "issuer": settings.issuer_url,
        "vct": settings.national_id_vct,
        "claims": EXPECTED_CLAIMS,
        "errors": [],
    }
    # Answered: the request can no longer be fetched, and is not offered again.
    again = anonymous.get(created["request_uri"])
    assert again.status_code == 410
    assert again.json()["code"] == "request_answered"


def audit_entries(redis_client: redis.Redis, settings: Settings) -> list[dict[str, str]]:
    stream = f"{settings.redis_prefix}:{{audit}}:verifications"
    deadline = time.monotonic() + 3  # written after the response, as for /v1/verify
    while True:
        entries = [
            {k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in redis_client.xrange(stream)
        ]
        verified = [e for e in entries if e["action"] == "credential.verified"]
        if verified or time.monotonic() > deadline:
            return verified
        time.sleep(0.05)


def test_answers_are_audited_as_verifications(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    created = create(http)
    assert wallet_vp.present(created["wallet_uri"], wallet=holder_wallet, http=anonymous).accepted
    (entry,) = audit_entries(redis_client, settings)
    assert entry["client"] == "test-app"  # the relying party, though the wallet called
    assert entry["result"] == "valid"
    assert entry["vct"] == settings.national_id_vct
    refused = create(http)
    wallet_vp.present(
        refused["wallet_uri"], wallet=holder_wallet, http=anonymous, claims=[("given_name",)]
    )
    deadline = time.monotonic() + 3
    while len(entries := audit_entries(redis_client, settings)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert entries[1]["result"] == "missing_claims"


def test_long_poll_returns_when_the_wallet_answers(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http)
    seen: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        seen["body"] = status(http, created["request_id"], wait=10)
        seen["took"] = time.monotonic() - started

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.3)
    with httpx.Client(timeout=10) as wallet_http:
        assert wallet_vp.present(
            created["wallet_uri"], wallet=holder_wallet, http=wallet_http
        ).accepted
    waiter.join(timeout=5)
    assert seen["body"]["state"] == "completed"
    assert seen["body"]["verdict"]["claims"] == EXPECTED_CLAIMS
    assert 0.25 < seen["took"] < 2.0  # woken by the answer, not by the 10 s bound


def test_long_poll_gives_up_after_wait_seconds(http: httpx.Client) -> None:
    created = create(http)
    started = time.monotonic()
    assert status(http, created["request_id"], wait=1)["state"] == "pending"
    assert 0.9 < time.monotonic() - started < 2.0
    for wait in (-1, 31):
        response = http.get(
            f"/v1/presentation-requests/{created['request_id']}", params={"wait": wait}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"


def test_event_stream_reports_the_answer_then_ends(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http)
    started = time.monotonic()
    with http.stream("GET", f"/v1/presentation-requests/{created['request_id']}/events") as s:
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        events = sse_events(s)
        assert next(events) == (
            "state",
            {"request_id": created["request_id"], "state": "pending", "verdict": None},
        )
        assert wallet_vp.present(
            created["wallet_uri"], wallet=holder_wallet, http=anonymous
        ).accepted
        name, body = next(events)
        assert name == "state"
        assert body["state"] == "completed"
        assert body["verdict"]["claims"] == EXPECTED_CLAIMS
        assert list(events) == []  # the stream ended after the final state
    assert time.monotonic() - started < 3


def test_event_stream_ends_with_expired(http: httpx.Client) -> None:
    created = create(http, expires_in=1)
    started = time.monotonic()
    with http.stream("GET", f"/v1/presentation-requests/{created['request_id']}/events") as s:
        states = [body["state"] for _, body in sse_events(s)]
    assert states == ["pending", "expired"]
    assert time.monotonic() - started < 2.5


def test_event_stream_of_a_finished_request_is_one_event(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http)
    assert wallet_vp.present(created["wallet_uri"], wallet=holder_wallet, http=anonymous).accepted
    with http.stream("GET", f"/v1/presentation-requests/{created['request_id']}/events") as s:
        events = list(sse_events(s))
    assert [body["state"] for _, body in events] == ["completed"]


# -- data minimisation ------------------------------------------------------------------------


def test_unrequested_claims_are_neither_returned_nor_stored(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
    citizen: dict[str, Any],
) -> None:
    created = create(http)
    everything = tuple(citizen)  # the wallet over-shares: every top-level claim
    result = wallet_vp.present(
        created["wallet_uri"],
        wallet=holder_wallet,
        http=anonymous,
        claims=[(name,) for name in everything],
    )
    assert result.accepted, result.body
    verdict = status(http, created["request_id"])["verdict"]
    assert verdict["claims"] == EXPECTED_CLAIMS
    dump = redis_dump(redis_client, settings.redis_prefix)
    assert "Amina" in dump  # the search works: the requested claim is there
    assert_nothing_of(dump, UNREQUESTED_VALUES)
    assert "vp_token" not in dump
    assert holder_wallet.credentials()[0].credential[:40] not in dump


def test_whole_object_request_returns_the_object_as_disclosed(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http, claims=[["place_of_birth"]])
    assert wallet_vp.present(created["wallet_uri"], wallet=holder_wallet, http=anonymous).accepted
    claims = status(http, created["request_id"])["verdict"]["claims"]
    assert claims == {"place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"}}


def test_no_claims_requested_proves_a_valid_credential_only(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http, claims=[])
    request = fetch(anonymous, created)
    assert (
        "claims"
        not in anonymous.get(created["request_uri"], headers={"Accept": "application/json"}).json()[
            "dcql_query"
        ]["credentials"][0]
    )
    response = post_answer(anonymous, request, key_bound(holder_wallet, request, ("sex",)))
    assert response.status_code == 200
    verdict = status(http, created["request_id"])["verdict"]
    assert verdict["valid"] is True
    assert verdict["claims"] == {}


# -- attacks and mistakes ---------------------------------------------------------------------


def test_replayed_response_is_refused_and_changes_nothing(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    presentation = key_bound(holder_wallet, request)
    assert post_answer(anonymous, request, presentation).status_code == 200
    before = status(http, created["request_id"])
    again = post_answer(anonymous, request, presentation)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"
    assert again.json()["code"] == "nonce_replayed"
    # A different, even valid, second answer is refused too: the nonce is spent.
    other = post_answer(anonymous, request, key_bound(holder_wallet, request, ("given_name",)))
    assert other.json()["code"] == "nonce_replayed"
    assert status(http, created["request_id"]) == before


def test_racing_answers_one_wins(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet, server: BackgroundServer
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    presentation = key_bound(holder_wallet, request)
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def answer() -> None:
        with httpx.Client(timeout=10) as own:
            barrier.wait()
            codes.append(post_answer(own, request, presentation).status_code)

    threads = [threading.Thread(target=answer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(codes) == [200] + [400] * 7
    assert status(http, created["request_id"])["state"] == "completed"


def test_late_response_is_refused(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    created = create(http, expires_in=1)
    request = fetch(anonymous, created)
    presentation = key_bound(holder_wallet, request)
    time.sleep(1.1)
    late = post_answer(anonymous, request, presentation)
    assert late.status_code == 400
    assert late.json()["code"] == "request_expired"
    assert status(http, created["request_id"]) == {
        "request_id": created["request_id"],
        "state": "expired",
        "verdict": None,
    }
    fetched = anonymous.get(created["request_uri"])
    assert fetched.status_code == 410
    assert fetched.json()["code"] == "request_expired"
    key = f"{settings.redis_prefix}:{{vp:{created['request_id']}}}:request"
    record = redis_client.hgetall(key)
    assert record[b"status"] == b"pending"
    assert b"result" not in record
    assert_nothing_of(redis_dump(redis_client, settings.redis_prefix), ["Amina", "Fès"])


@pytest.mark.parametrize(
    "audience",
    [
        "redirect_uri:https://evil.example/cb",  # made for another verifier
        # Thiqa's URL without the client id prefix (1.0: Always Use the Full Client Identifier).
        "RESPONSE_URI",
    ],
)
def test_wrong_audience_in_the_key_binding(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
    audience: str,
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    audience = request.response_uri if audience == "RESPONSE_URI" else audience
    presentation = key_bound(holder_wallet, request, audience=audience)
    rejected(post_answer(anonymous, request, presentation), "audience_mismatch")
    assert_failed(http, created["request_id"], "audience_mismatch")
    assert_nothing_of(redis_dump(redis_client, settings.redis_prefix), ["Amina", "Fès"])


def test_wrong_nonce_in_the_key_binding(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    created, other = create(http), create(http)
    request = fetch(anonymous, created)
    # A presentation made for another request of the same relying party.
    presentation = key_bound(holder_wallet, request, nonce=other["nonce"])
    rejected(post_answer(anonymous, request, presentation), "nonce_mismatch")
    assert_failed(http, created["request_id"], "nonce_mismatch")
    assert status(http, other["request_id"])["state"] == "pending"
    assert_nothing_of(redis_dump(redis_client, settings.redis_prefix), ["Amina", "Fès"])


def test_presentation_without_key_binding(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    bare = holder.present(
        holder_wallet.credentials()[0].credential, ("given_name", ("place_of_birth", "locality"))
    )
    rejected(post_answer(anonymous, request, bare), "key_binding_required")
    assert_failed(http, created["request_id"], "key_binding_required")
    assert_nothing_of(redis_dump(redis_client, settings.redis_prefix), ["Amina", "Fès"])


def test_key_binding_by_another_key(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    stolen = holder.present(
        holder_wallet.credentials()[0].credential,
        ("given_name", ("place_of_birth", "locality")),
        holder_key=generate_signing_key(),
        nonce=request.nonce,
        audience=request.client_id,
        now=int(time.time()),
    )
    rejected(post_answer(anonymous, request, stolen), "invalid_key_binding")
    assert_failed(http, created["request_id"], "invalid_key_binding")


def test_missing_requested_claim(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    created = create(http)
    result = wallet_vp.present(
        created["wallet_uri"], wallet=holder_wallet, http=anonymous, claims=[("given_name",)]
    )
    assert result.status == 400
    assert result.body["code"] == "presentation_rejected"
    assert [e["code"] for e in result.body["errors"]] == ["missing_claims"]
    verdict = assert_failed(http, created["request_id"], "missing_claims")
    assert "place_of_birth.locality" in verdict["errors"][0]["message"]
    assert "given_name" not in verdict["errors"][0]["message"]
    assert_nothing_of(redis_dump(redis_client, settings.redis_prefix), ["Amina"])


def test_revoked_credential(
    http: httpx.Client, anonymous: httpx.Client, revocable_wallet: tuple[Wallet, str]
) -> None:
    wallet, credential_id = revocable_wallet
    assert http.post(f"/v1/credentials/{credential_id}/revoke").status_code == 200
    created = create(http)
    result = wallet_vp.present(created["wallet_uri"], wallet=wallet, http=anonymous)
    assert result.status == 400
    assert [e["code"] for e in result.body["errors"]] == ["revoked"]
    verdict = assert_failed(http, created["request_id"], "revoked")
    assert verdict["credential_status"] == "revoked"


def test_wallet_error_response_is_recorded(http: httpx.Client, anonymous: httpx.Client) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    response = anonymous.post(
        request.response_uri,
        data={
            "error": "access_denied",
            "error_description": "<script>nope</script>",
            "state": request.state,
        },
    )
    assert response.status_code == 200
    assert response.json() == {}
    verdict = assert_failed(http, created["request_id"], "wallet_error")
    assert "access_denied" in verdict["errors"][0]["message"]
    assert "script" not in json.dumps(verdict)
    again = anonymous.post(
        request.response_uri, data={"error": "access_denied", "state": request.state}
    )
    assert again.json()["code"] == "nonce_replayed"


def test_wrong_state_is_refused_without_spending_the_request(
    http: httpx.Client, anonymous: httpx.Client, holder_wallet: Wallet
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    presentation = key_bound(holder_wallet, request)
    for state in ("wrong", ""):
        response = anonymous.post(
            request.response_uri,
            data={"vp_token": json.dumps({"credential": [presentation]}), "state": state},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "state_mismatch"
    assert status(http, created["request_id"])["state"] == "pending"
    assert post_answer(anonymous, request, presentation).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {
            "content": b'{"vp_token": {}, "state": "s"}',
            "headers": {"content-type": "application/json"},
        },
        {
            "content": b"vp_token=a&vp_token=b&state=s",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        {
            "content": b"vp_token=%FF&state=s",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        {"content": b"state=s", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ],
)
def test_malformed_answers_leave_the_request_open(
    http: httpx.Client, anonymous: httpx.Client, body: dict[str, Any]
) -> None:
    created = create(http)
    response = anonymous.post(f"/presentation-responses/{created['request_id']}", **body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["code"] == "malformed_response"
    assert status(http, created["request_id"])["state"] == "pending"


@pytest.mark.parametrize(
    "vp_token",
    [
        "eyJhbGciOi.not-json",
        json.dumps(["a~"]),
        json.dumps({"credential": "x~"}),  # the pre-1.0-Final shape: a bare string
        json.dumps({"credential": []}),
        json.dumps({"credential": ["x~", "y~"]}),
        json.dumps({"credential": ["x~"], "other": ["y~"]}),
        json.dumps({"other": ["x~"]}),
    ],
)
def test_vp_token_not_answering_the_query(
    http: httpx.Client, anonymous: httpx.Client, vp_token: str
) -> None:
    created = create(http)
    request = fetch(anonymous, created)
    rejected(post_answer(anonymous, request, vp_token=vp_token), "invalid_vp_token")
    assert_failed(http, created["request_id"], "invalid_vp_token")


def test_another_client_cannot_read_the_result(
    http: httpx.Client,
    anonymous: httpx.Client,
    holder_wallet: Wallet,
    server: BackgroundServer,
    settings: Settings,
) -> None:
    created = create(http)
    assert wallet_vp.present(created["wallet_uri"], wallet=holder_wallet, http=anonymous).accepted
    key = add_client(settings, "other-app", frozenset({Scope.VERIFY}))
    path = f"/v1/presentation-requests/{created['request_id']}"
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as other:
        for url, params in ((path, {}), (path, {"wait": 1}), (path + "/events", {})):
            response = other.get(url, params=params)
            assert response.status_code == 404
            assert response.json()["code"] == "presentation_request_not_found"
            assert "Amina" not in response.text
    assert status(http, created["request_id"])["state"] == "completed"


# -- a credential of another type ------------------------------------------------------------


@pytest.fixture
def multi_type_server(
    tmp_path: Path, settings: Settings
) -> Iterator[tuple[httpx.Client, BackgroundServer]]:
    """Thiqa trusting, besides itself, a registry that issues residence permits."""
    registry_key = generate_signing_key()
    jwk = {**public_jwk(registry_key.key), "kid": registry_key.kid}
    trust = tmp_path / "trust.yaml"
    trust.write_text(
        yaml.safe_dump(
            {
                "issuers": [
                    {
                        "issuer": "https://registry.example",
                        "credential_types": [RESIDENCE],
                        "jwks": {"keys": [jwk]},
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    # Its own keys folder: its certificates name its own URL.
    own = settings.model_copy(
        update={"trusted_issuers": trust, "port": free_port(), "keys_dir": tmp_path / "multi"}
    )
    KEYS[:] = [own.keys_dir]
    key = add_client(own, "border-app", frozenset(Scope))
    with (
        BackgroundServer(own) as running,
        httpx.Client(
            base_url=running.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as client,
    ):
        yield client, running


RESIDENCE = "https://registry.example/types/residence-permit"


def test_credential_of_another_type(
    multi_type_server: tuple[httpx.Client, BackgroundServer],
    tmp_path: Path,
    citizen: dict[str, Any],
) -> None:
    http, running = multi_type_server
    wallet = Wallet.open(tmp_path / "w.json")
    wallet.add_trust(trusted_root())
    key = wallet.new_key()
    issued = http.post(
        "/v1/credentials", json={"claims": citizen, "holder_jwk": public_jwk(key.key)}
    )
    assert issued.status_code == 201, issued.text
    stored = wallet.add(issued.json()["credential"], key)
    created = create(http, vct=RESIDENCE)
    with httpx.Client(timeout=10) as anonymous:
        request = fetch(anonymous, created)
        assert request.vct_values == (RESIDENCE,)
        with pytest.raises(wallet_vp.PresentationError, match="no credential"):
            wallet_vp.choose_credential(wallet, request)
        # A wallet that presents its national ID anyway is refused.
        result = wallet_vp.present(
            created["wallet_uri"], wallet=wallet, http=anonymous, credential_id=stored.id
        )
    assert result.status == 400
    assert [e["code"] for e in result.body["errors"]] == ["vct_mismatch"]
    verdict = assert_failed(http, created["request_id"], "vct_mismatch")
    assert verdict["vct"] == running.settings.national_id_vct


def test_openapi_documents_every_endpoint(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/v1/presentation-requests"]) == {"post"}
    assert set(paths["/v1/presentation-requests/{request_id}"]) == {"get"}
    assert (
        "text/event-stream"
        in (
            paths["/v1/presentation-requests/{request_id}/events"]["get"]["responses"]["200"][
                "content"
            ]
        )
    )
    assert (
        "application/oauth-authz-req+jwt"
        in (paths["/presentation-requests/{request_id}"]["get"]["responses"]["200"]["content"])
    )
    response = paths["/presentation-responses/{request_id}"]["post"]
    assert "application/x-www-form-urlencoded" in response["requestBody"]["content"]
    assert {"200", "400", "404", "503"} <= set(response["responses"])
    for path in ("/v1/presentation-requests", "/presentation-responses/{request_id}"):
        for operation in paths[path].values():
            assert operation.get("description"), path
