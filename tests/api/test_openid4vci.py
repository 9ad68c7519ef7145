"""OpenID4VCI issuance over real HTTP against a live Thiqa and a real Redis.

Every refusal is checked for its exact OAuth/OpenID4VCI error code and for what did NOT
happen: no credential issued (no status record in Redis), the offer's state unchanged, and,
for the credential endpoint, the same access token still working afterwards with a good proof.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from service.api.server import BackgroundServer
from service.core import holder, jws
from service.core.encoding import b64url_encode, json_dumps
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.openid4vci import PRE_AUTHORIZED_GRANT, PROOF_TYP
from service.settings import Settings
from service.store.clients import Scope

from ..conftest import add_client
from .conftest import AUDIENCE, NONCE

CONFIG = "thiqa_national_id"


# -- helpers ---------------------------------------------------------------------------------


def make_offer(http: httpx.Client, claims: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = http.post("/v1/credential-offers", json={"claims": claims, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def code_of(offer: dict[str, Any]) -> str:
    return offer["credential_offer"]["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]


def token_request(
    client: httpx.Client, code: str, tx_code: str | None = None, **extra: str
) -> httpx.Response:
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code, **extra}
    if tx_code is not None:
        form["tx_code"] = tx_code
    return client.post("/token", data=form)


def access_token(client: httpx.Client, offer: dict[str, Any]) -> str:
    response = token_request(client, code_of(offer), offer["tx_code"])
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def new_nonce(client: httpx.Client) -> str:
    response = client.post("/nonce")
    assert response.status_code == 200
    return response.json()["c_nonce"]


def proof(
    key: SigningKey,
    *,
    nonce: str | None,
    aud: str,
    iat: int | None = None,
    typ: str = PROOF_TYP,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    payload: dict[str, Any] = {"aud": aud, "iat": int(time.time()) if iat is None else iat}
    if nonce is not None:
        payload["nonce"] = nonce
    payload.update(claims or {})
    extra = {"jwk": public_jwk(key.key)} if header is None else header
    return jws.encode(payload, key, typ=typ, include_kid=False, extra_header=extra)


def credential_request(
    client: httpx.Client, token: str | None, body: Any, **headers: str
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/credential", json=body, headers={**auth, **headers})


def body_for(jwt: str, config: str = CONFIG) -> dict[str, Any]:
    return {"credential_configuration_id": config, "proofs": {"jwt": [jwt]}}


def assert_issued_to(response: httpx.Response, key: SigningKey) -> str:
    """A Credential Response holding exactly one ``dc+sd-jwt`` credential, bound to ``key``
    (its ``cnf.jwk`` is that key), never cached; returns the credential."""
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    (credential,) = response.json()["credentials"]
    issued = credential["credential"]
    signed = jws.parse(issued.split("~")[0], typ=frozenset({"dc+sd-jwt"}))
    assert signed.payload["cnf"] == {"jwk": public_jwk(key.key)}
    return issued


def assert_token_issued(response: httpx.Response) -> str:
    """A token response with a Bearer access token; returns the token."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 32
    return body["access_token"]


def issued_records(redis_client: redis.Redis, settings: Settings) -> int:
    """Credential records in Redis: one per credential ever signed."""
    return sum(
        1
        for _ in redis_client.scan_iter(
            match=f"{settings.redis_prefix}:{{sl:*}}:cred:*", count=1000
        )
    )


def offer_state(http: httpx.Client, offer: dict[str, Any]) -> str | None:
    response = http.get(f"/v1/credential-offers/{offer['offer_id']}")
    if response.status_code == 404:
        assert response.json()["code"] == "offer_not_found"
        return None
    assert response.status_code == 200, response.text
    return response.json()["status"]


def everything_under(redis_client: redis.Redis, prefix: str) -> bytes:
    """Every key and value under ``prefix``, whatever the type, as one blob to search."""
    blob = bytearray()
    for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
        blob += key
        kind = redis_client.type(key)
        if kind == b"string":
            blob += redis_client.get(key) or b""
        elif kind == b"hash":
            for field, value in redis_client.hgetall(key).items():
                blob += field + b"=" + value
        elif kind == b"set":
            blob += b"".join(redis_client.smembers(key))
        elif kind == b"list":
            blob += b"".join(redis_client.lrange(key, 0, -1))
        elif kind == b"zset":
            blob += b"".join(redis_client.zrange(key, 0, -1))
        elif kind == b"stream":
            for _, fields in redis_client.xrange(key):
                for field, value in fields.items():
                    blob += field + b"=" + value
        else:  # pragma: no cover
            raise AssertionError(f"unexpected {kind!r}")
        blob += b"\n"
    return bytes(blob)


def claim_values(claims: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for value in claims.values():
        if isinstance(value, dict):
            values.extend(claim_values(value))
        else:
            values.append(str(value))
    return values


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error, response.json()
    assert "no-store" in response.headers["cache-control"]


@pytest.fixture
def wallet_key() -> SigningKey:
    return generate_signing_key("ES256")


@pytest.fixture
def issuer_id(server: BackgroundServer) -> str:
    return server.settings.issuer_url


@pytest.fixture
def ready(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """An offer whose code was redeemed: (offer, access token)."""
    offer = make_offer(http, citizen)
    return offer, access_token(anonymous, offer)


# -- the whole flow --------------------------------------------------------------------------


def test_offer_to_credential_to_verification(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    wallet_key: SigningKey,
    issuer_id: str,
) -> None:
    offer = make_offer(http, citizen)
    assert offer["tx_code"] is not None
    assert offer["tx_code"].isdigit()
    assert len(offer["tx_code"]) == 6
    # The link and the QR code carry the offer by reference.
    link = urlsplit(offer["offer_uri"])
    assert link.scheme == "openid-credential-offer"
    reference = parse_qs(link.query)["credential_offer_uri"][0]
    assert reference == offer["credential_offer_uri"]
    assert reference == f"{issuer_id}/credential-offers/{offer['offer_id']}"
    assert base64.b64decode(offer["qr_png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert offer["qr_svg"].lstrip().startswith("<svg")

    # The wallet: the offer by reference, then the metadata it names.
    fetched = anonymous.get(urlsplit(reference).path)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "application/json"
    document = fetched.json()
    assert document == offer["credential_offer"]
    assert document["credential_issuer"] == issuer_id
    assert document["credential_configuration_ids"] == [CONFIG]
    grant = document["grants"][PRE_AUTHORIZED_GRANT]
    assert grant["tx_code"] == {
        "input_mode": "numeric",
        "length": 6,
        "description": grant["tx_code"]["description"],
    }
    metadata = anonymous.get("/.well-known/openid-credential-issuer").json()
    assert metadata["credential_issuer"] == issuer_id
    auth = anonymous.get("/.well-known/oauth-authorization-server").json()
    assert auth["issuer"] == issuer_id
    assert PRE_AUTHORIZED_GRANT in auth["grant_types_supported"]

    token = token_request(anonymous, grant["pre-authorized_code"], offer["tx_code"])
    assert token.status_code == 200, token.text
    assert "no-store" in token.headers["cache-control"]
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert offer_state(http, offer) == "token_issued"

    nonce = anonymous.post("/nonce")
    assert nonce.status_code == 200
    assert "no-store" in nonce.headers["cache-control"]
    c_nonce = nonce.json()["c_nonce"]

    response = credential_request(
        anonymous,
        body["access_token"],
        body_for(proof(wallet_key, nonce=c_nonce, aud=metadata["credential_issuer"])),
    )
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    credentials = response.json()["credentials"]
    assert len(credentials) == 1
    sd_jwt = credentials[0]["credential"]

    # Bound to the proof's key: a presentation signed by it verifies with key binding.
    header = json.loads(base64.urlsafe_b64decode(sd_jwt.split(".")[0] + "=="))
    assert header["typ"] == "dc+sd-jwt"
    presentation = holder.present(
        sd_jwt,
        ("given_name", "family_name#ar"),
        holder_key=wallet_key,
        nonce=NONCE,
        audience=AUDIENCE,
        now=int(time.time()),
    )
    verdict = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert verdict["valid"] is True, verdict
    assert verdict["key_bound"] is True
    assert verdict["credential_status"] == "valid"
    assert verdict["claims"] == {"given_name": "Amina", "family_name#ar": "الإدريسي"}
    # Another key cannot present it.
    thief = generate_signing_key("ES256")
    stolen = holder.present(
        sd_jwt,
        ("given_name",),
        holder_key=thief,
        nonce=NONCE,
        audience=AUDIENCE,
        now=int(time.time()),
    )
    refused = http.post(
        "/v1/verify", json={"credential": stolen, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert refused["valid"] is False
    assert "invalid_key_binding" in [e["code"] for e in refused["errors"]]

    # The issuing app learns the credential's id and can revoke it.
    info = http.get(f"/v1/credential-offers/{offer['offer_id']}").json()
    assert info["status"] == "issued"
    assert http.post(f"/v1/credentials/{info['credential_id']}/revoke").status_code == 200
    again = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert again["credential_status"] == "revoked"


def test_offer_without_tx_code(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    wallet_key: SigningKey,
    issuer_id: str,
) -> None:
    offer = make_offer(http, citizen, tx_code=False)
    assert offer["tx_code"] is None
    assert "tx_code" not in offer["credential_offer"]["grants"][PRE_AUTHORIZED_GRANT]
    # A transaction code the offer does not expect is a malformed request, and costs nothing.
    assert_oauth_error(token_request(anonymous, code_of(offer), "123456"), 400, "invalid_request")
    token = access_token(anonymous, offer)
    response = credential_request(
        anonymous, token, body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    assert_issued_to(response, wallet_key)
    assert offer_state(http, offer) == "issued"


def test_claims_are_deleted_once_issued(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    # Values of a letter or two ("F", "MA") occur by chance in ids and hashes; the rest not.
    values = [v for v in claim_values(citizen) if len(v) >= 3]
    assert "ZZ104233" in values
    assert "أمينة" in values
    assert len(values) == 8
    offer = make_offer(http, citizen)
    token = access_token(anonymous, offer)

    def found(blob: bytes) -> list[str]:
        return [
            v
            for v in values
            if v.encode("utf-8") in blob or json.dumps(v)[1:-1].encode("ascii") in blob
        ]

    before = everything_under(redis_client, settings.redis_prefix)
    # The offer holds the claims until issuance, sealed (tests/api/test_offer_claims_at_rest.py).
    assert found(before) == []
    (offer_key,) = redis_client.scan_iter(match=f"{settings.redis_prefix}:{{vci:*")
    assert redis_client.hget(offer_key, "claims").startswith(b"v1.")
    response = credential_request(
        anonymous, token, body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    assert_issued_to(response, wallet_key)
    after = everything_under(redis_client, settings.redis_prefix)
    assert found(after) == []
    assert offer_state(http, offer) == "issued"


def test_offer_claims_are_checked_like_issuance(
    http: httpx.Client, citizen: dict[str, Any]
) -> None:
    for claims, code in (
        ({**citizen, "national_id": "QQQ777"}, "invalid_claims"),
        ({**citizen, "iss": "https://evil.example"}, "invalid_claims"),
        ({k: v for k, v in citizen.items() if k != "birthdate"}, "invalid_claims"),
    ):
        response = http.post("/v1/credential-offers", json={"claims": claims})
        assert response.status_code == 422
        assert response.json()["code"] == code
        assert "QQQ777" not in response.text
    wrong_type = http.post(
        "/v1/credential-offers", json={"claims": citizen, "vct": "https://other.example/type"}
    )
    assert wrong_type.json()["code"] == "unsupported_vct"
    with_key = http.post(
        "/v1/credential-offers", json={"claims": citizen, "holder_jwk": {"kty": "EC"}}
    )
    assert with_key.status_code == 422
    assert with_key.json()["code"] == "invalid_request"


def test_an_offer_with_escapes_markup_or_bidi_overrides_in_a_claim_is_refused(
    http: httpx.Client, citizen: dict[str, Any], settings: Settings, redis_client: redis.Redis
) -> None:
    offers = f"{settings.redis_prefix}:{{vci:*"
    assert list(redis_client.scan_iter(match=offers)) == []
    for hostile in (
        {**citizen, "given_name": "Amina\x1b[2J\x1b]8;;https://evil.example\x1b\\x"},
        {**citizen, "family_name#ar": "\u202eالإدريسي"},
        {**citizen, "place_of_birth": {"locality": "F\u00e8s\u2066", "country": "MA"}},
    ):
        response = http.post("/v1/credential-offers", json={"claims": hostile})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_claims")
        assert "evil.example" not in response.text
    assert list(redis_client.scan_iter(match=offers)) == []  # no offer was made


def test_offer_needs_the_issue_scope(
    server: BackgroundServer, anonymous: httpx.Client, citizen: dict[str, Any], settings: Settings
) -> None:
    assert (
        anonymous.post("/v1/credential-offers", json={"claims": citizen}).json()["code"]
        == "unauthenticated"
    )
    key = add_client(settings, "verifier-only", frozenset({Scope.VERIFY}))
    response = anonymous.post(
        "/v1/credential-offers",
        json={"claims": citizen},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_only_the_offering_client_can_follow_the_offer(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    settings: Settings,
) -> None:
    offer = make_offer(http, citizen)
    other = add_client(settings, "other-issuing-app", frozenset({Scope.ISSUE}))
    response = anonymous.get(
        f"/v1/credential-offers/{offer['offer_id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "offer_not_found"
    assert offer_state(http, offer) == "offered"


@pytest.mark.parametrize(
    "offer_id", ["x" * 65, "A" * 2000, "has%20space", "%7Btag%7D", "AAAAAAAAAAAAAAAAAAAAA%C3%BC"]
)
def test_malformed_offer_ids_answer_like_unknown_ones(
    anonymous: httpx.Client, redis_client: redis.Redis, settings: Settings, offer_id: str
) -> None:
    """The wallet's offer endpoint answers an id that cannot be one exactly as an unknown id:
    404 offer_not_found, its documented problem, not a 422 from the framework."""
    before = sorted(redis_client.scan_iter(match=f"{settings.redis_prefix}:*"))
    expected = anonymous.get("/credential-offers/AAAAAAAAAAAAAAAAAAAAAA")
    got = anonymous.get(f"/credential-offers/{offer_id}")
    assert expected.status_code == 404, expected.text
    assert got.status_code == 404, got.text
    assert got.headers["content-type"] == expected.headers["content-type"]
    assert got.json() == expected.json()
    assert got.json()["code"] == "offer_not_found"
    assert sorted(redis_client.scan_iter(match=f"{settings.redis_prefix}:*")) == before


def test_offer_response_is_not_cached(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any]
) -> None:
    response = http.post("/v1/credential-offers", json={"claims": citizen})
    assert "no-store" in response.headers["cache-control"]
    fetched = anonymous.get(urlsplit(response.json()["credential_offer_uri"]).path)
    assert "no-store" in fetched.headers["cache-control"]
    assert anonymous.get("/credential-offers/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


# -- token endpoint --------------------------------------------------------------------------


def test_pre_authorized_code_is_single_use(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    offer = make_offer(http, citizen)
    first = access_token(anonymous, offer)
    replay = token_request(anonymous, code_of(offer), offer["tx_code"])
    assert_oauth_error(replay, 400, "invalid_grant")
    # A code used twice has leaked: the offer is withdrawn with the token granted for it.
    assert offer_state(http, offer) is None
    late = credential_request(
        anonymous, first, body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    assert_oauth_error(late, 401, "invalid_token")
    assert issued_records(redis_client, settings) == 0
    assert anonymous.get(urlsplit(offer["credential_offer_uri"]).path).status_code == 404


def test_expired_offer(
    settings: Settings, citizen: dict[str, Any], redis_client: redis.Redis
) -> None:
    short = settings.model_copy(update={"offer_ttl_seconds": 1})
    key = add_client(short, "issuing-app", frozenset({Scope.ISSUE}))
    with (
        BackgroundServer(short) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http,
    ):
        offer = make_offer(http, citizen)
        time.sleep(2.1)
        assert http.get(urlsplit(offer["credential_offer_uri"]).path).status_code == 404
        response = token_request(http, code_of(offer), offer["tx_code"])
        assert_oauth_error(response, 400, "invalid_grant")
        assert offer_state(http, offer) is None
        assert issued_records(redis_client, short) == 0
        assert everything_under(redis_client, short.redis_prefix).count(b"ZZ104233") == 0


def test_wrong_tx_code_each_attempt_then_burnt(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    offer = make_offer(http, citizen)
    right = offer["tx_code"]
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in (1, 2):
        response = token_request(anonymous, code_of(offer), wrong)
        assert_oauth_error(response, 400, "invalid_grant")
        assert offer_state(http, offer) == "offered", attempt
    # The third wrong code (THIQA_TX_CODE_MAX_ATTEMPTS=3) withdraws the offer...
    assert_oauth_error(token_request(anonymous, code_of(offer), wrong), 400, "invalid_grant")
    assert offer_state(http, offer) is None
    # ...so even the right code fails now, and the claims are gone.
    assert_oauth_error(token_request(anonymous, code_of(offer), right), 400, "invalid_grant")
    assert b"ZZ104233" not in everything_under(redis_client, settings.redis_prefix)
    assert issued_records(redis_client, settings) == 0


def test_right_tx_code_after_a_wrong_one(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any]
) -> None:
    offer = make_offer(http, citizen)
    assert_oauth_error(token_request(anonymous, code_of(offer), "not-it"), 400, "invalid_grant")
    assert_token_issued(token_request(anonymous, code_of(offer), offer["tx_code"]))
    assert offer_state(http, offer) == "token_issued"


def test_missing_tx_code(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any]
) -> None:
    offer = make_offer(http, citizen)
    for missing in (None, ""):
        response = token_request(anonymous, code_of(offer), missing)
        assert_oauth_error(response, 400, "invalid_request")
    # No guess was spent: three wrong codes are still needed to burn the offer.
    assert offer_state(http, offer) == "offered"
    assert_token_issued(token_request(anonymous, code_of(offer), offer["tx_code"]))
    assert offer_state(http, offer) == "token_issued"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": PRE_AUTHORIZED_GRANT}, "invalid_request"),
        ({"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": "guess"}, "invalid_grant"),
        (
            {
                "grant_type": PRE_AUTHORIZED_GRANT,
                "pre-authorized_code": "AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43,
            },
            "invalid_grant",
        ),
    ],
)
def test_token_request_errors(anonymous: httpx.Client, form: dict[str, str], error: str) -> None:
    assert_oauth_error(anonymous.post("/token", data=form), 400, error)


def test_token_request_must_be_a_form(
    http: httpx.Client, anonymous: httpx.Client, citizen: dict[str, Any]
) -> None:
    offer = make_offer(http, citizen)
    form = {
        "grant_type": PRE_AUTHORIZED_GRANT,
        "pre-authorized_code": code_of(offer),
        "tx_code": offer["tx_code"],
    }
    assert_oauth_error(anonymous.post("/token", json=form), 400, "invalid_request")
    repeated = (
        f"grant_type={PRE_AUTHORIZED_GRANT}&pre-authorized_code={code_of(offer)}"
        f"&tx_code={offer['tx_code']}&tx_code=000000"
    )
    response = anonymous.post(
        "/token", content=repeated, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert offer_state(http, offer) == "offered"


# -- credential endpoint ---------------------------------------------------------------------


def _still_issuable(
    http: httpx.Client,
    anonymous: httpx.Client,
    offer: dict[str, Any],
    token: str,
    key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    """Nothing was issued or used up: the offer waits, and the same token still works."""
    assert issued_records(redis_client, settings) == 0
    assert offer_state(http, offer) == "token_issued"
    response = credential_request(
        anonymous, token, body_for(proof(key, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    assert_issued_to(response, key)
    assert issued_records(redis_client, settings) == 1


def _off_curve(jwk: dict[str, str]) -> dict[str, str]:
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
    return {**jwk, "y": b64url_encode(((y + 1) % (1 << 256)).to_bytes(32, "big"))}


def _alg_none(key: SigningKey, nonce: str, aud: str) -> str:
    header = {"alg": "none", "typ": PROOF_TYP, "jwk": public_jwk(key.key)}
    payload = {"aud": aud, "iat": int(time.time()), "nonce": nonce}
    encode = lambda v: b64url_encode(json_dumps(v).encode())  # noqa: E731
    return f"{encode(header)}.{encode(payload)}."


BAD_PROOFS = {
    "wrong typ": lambda k, n, a: proof(k, nonce=n, aud=a, typ="JWT"),
    "kb+jwt typ": lambda k, n, a: proof(k, nonce=n, aud=a, typ="kb+jwt"),
    "alg none": _alg_none,
    "wrong aud": lambda k, n, a: proof(k, nonce=n, aud="https://other-issuer.example"),
    "stale iat": lambda k, n, a: proof(k, nonce=n, aud=a, iat=int(time.time()) - 3600),
    "future iat": lambda k, n, a: proof(k, nonce=n, aud=a, iat=int(time.time()) + 3600),
    "no nonce": lambda k, n, a: proof(k, nonce=None, aud=a),
    "kid instead of jwk": lambda k, n, a: proof(k, nonce=n, aud=a, header={"kid": "key-1"}),
    "kid and jwk": lambda k, n, a: proof(
        k, nonce=n, aud=a, header={"kid": "key-1", "jwk": public_jwk(k.key)}
    ),
    "x5c": lambda k, n, a: proof(k, nonce=n, aud=a, header={"x5c": ["MIIB"]}),
    "off-curve jwk": lambda k, n, a: proof(
        k, nonce=n, aud=a, header={"jwk": _off_curve(public_jwk(k.key))}
    ),
    "private jwk": lambda k, n, a: proof(
        k, nonce=n, aud=a, header={"jwk": {**public_jwk(k.key), "d": "AAAA"}}
    ),
    "signed by another key": lambda k, n, a: proof(
        generate_signing_key("ES256"), nonce=n, aud=a, header={"jwk": public_jwk(k.key)}
    ),
    "ES384 not allowed": lambda k, n, a: proof(
        (p := generate_signing_key("ES384")), nonce=n, aud=a, header={"jwk": public_jwk(p.key)}
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PROOFS))
def test_bad_proofs_are_refused(
    case: str,
    ready: tuple[dict[str, Any], str],
    http: httpx.Client,
    anonymous: httpx.Client,
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    offer, token = ready
    nonce = new_nonce(anonymous)
    response = credential_request(
        anonymous, token, body_for(BAD_PROOFS[case](wallet_key, nonce, issuer_id))
    )
    assert_oauth_error(response, 400, "invalid_proof")
    _still_issuable(http, anonymous, offer, token, wallet_key, issuer_id, redis_client, settings)


def test_replayed_nonce(
    http: httpx.Client,
    anonymous: httpx.Client,
    citizen: dict[str, Any],
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    first_offer = make_offer(http, citizen)
    first = access_token(anonymous, first_offer)
    nonce = new_nonce(anonymous)
    used = proof(wallet_key, nonce=nonce, aud=issuer_id)
    assert_issued_to(credential_request(anonymous, first, body_for(used)), wallet_key)
    # The same nonce again, in a new proof for another offer, and the very same proof.
    offer = make_offer(http, citizen)
    token = access_token(anonymous, offer)
    for replay in (proof(wallet_key, nonce=nonce, aud=issuer_id), used):
        response = credential_request(anonymous, token, body_for(replay))
        assert_oauth_error(response, 400, "invalid_nonce")
    made_up = proof(wallet_key, nonce="A" * 32, aud=issuer_id)
    assert_oauth_error(
        credential_request(anonymous, token, body_for(made_up)), 400, "invalid_nonce"
    )
    assert issued_records(redis_client, settings) == 1
    assert offer_state(http, offer) == "token_issued"


def test_access_token_is_single_use(
    ready: tuple[dict[str, Any], str],
    anonymous: httpx.Client,
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    _, token = ready
    good = credential_request(
        anonymous, token, body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    assert_issued_to(good, wallet_key)
    again = credential_request(
        anonymous, token, body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    assert_oauth_error(again, 401, "invalid_token")
    assert again.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert issued_records(redis_client, settings) == 1


@pytest.mark.parametrize("token", [None, "not-a-token", "AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43])
def test_credential_needs_an_access_token(
    token: str | None,
    anonymous: httpx.Client,
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    nonce = new_nonce(anonymous)
    response = credential_request(
        anonymous, token, body_for(proof(wallet_key, nonce=nonce, aud=issuer_id))
    )
    assert_oauth_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert issued_records(redis_client, settings) == 0


def test_access_token_of_another_scheme_is_refused(
    ready: tuple[dict[str, Any], str],
    anonymous: httpx.Client,
    wallet_key: SigningKey,
    issuer_id: str,
) -> None:
    _, token = ready
    response = anonymous.post(
        "/credential",
        json=body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id)),
        headers={"Authorization": f"DPoP {token}"},
    )
    assert_oauth_error(response, 401, "invalid_token")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"credential_configuration_id": "some_other_credential"},
            "unknown_credential_configuration",
        ),
        ({"proofs": "PROOF"}, "invalid_credential_request"),
        ({"credential_configuration_id": CONFIG}, "invalid_proof"),
        (
            {"credential_configuration_id": CONFIG, "proof": {"proof_type": "jwt", "jwt": "PROOF"}},
            "invalid_proof",
        ),
        ({"credential_configuration_id": CONFIG, "proofs": {"jwt": []}}, "invalid_proof"),
        (
            {"credential_configuration_id": CONFIG, "proofs": {"jwt": ["PROOF", "PROOF"]}},
            "invalid_proof",
        ),
        ({"credential_configuration_id": CONFIG, "proofs": {"di_vp": [{}]}}, "invalid_proof"),
        (
            {"credential_identifier": "x", "proofs": {"jwt": ["PROOF"]}},
            "invalid_credential_request",
        ),
        (
            {**body_for("PROOF"), "credential_response_encryption": {"jwk": {}, "enc": "A256GCM"}},
            "invalid_encryption_parameters",
        ),
        (["not", "an", "object"], "invalid_credential_request"),
    ],
)
def test_credential_request_errors(
    body: Any,
    error: str,
    ready: tuple[dict[str, Any], str],
    http: httpx.Client,
    anonymous: httpx.Client,
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    offer, token = ready
    good = proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id)
    if isinstance(body, dict):
        body = json.loads(json.dumps(body).replace('"PROOF"', json.dumps(good)))
    response = credential_request(anonymous, token, body)
    assert_oauth_error(response, 400, error)
    _still_issuable(http, anonymous, offer, token, wallet_key, issuer_id, redis_client, settings)


def test_credential_request_must_be_json(
    ready: tuple[dict[str, Any], str],
    http: httpx.Client,
    anonymous: httpx.Client,
    wallet_key: SigningKey,
    issuer_id: str,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    offer, token = ready
    good = json.dumps(body_for(proof(wallet_key, nonce=new_nonce(anonymous), aud=issuer_id)))
    for content, media in (
        (good, "text/plain"),
        (good.replace("{", '{"proofs": 1, ', 1), "application/json"),  # duplicate member
        ("{", "application/json"),
    ):
        response = anonymous.post(
            "/credential",
            content=content,
            headers={"Authorization": f"Bearer {token}", "Content-Type": media},
        )
        assert_oauth_error(response, 400, "invalid_credential_request")
    _still_issuable(http, anonymous, offer, token, wallet_key, issuer_id, redis_client, settings)


def test_access_token_expires(
    settings: Settings, citizen: dict[str, Any], wallet_key: SigningKey, redis_client: redis.Redis
) -> None:
    short = settings.model_copy(update={"access_token_ttl_seconds": 1})
    key = add_client(short, "issuing-app", frozenset({Scope.ISSUE}))
    with (
        BackgroundServer(short) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http,
    ):
        offer = make_offer(http, citizen)
        token = token_request(http, code_of(offer), offer["tx_code"]).json()
        assert token["expires_in"] == 1
        time.sleep(2.1)
        response = credential_request(
            http,
            token["access_token"],
            body_for(proof(wallet_key, nonce=new_nonce(http), aud=short.issuer_url)),
        )
        assert_oauth_error(response, 401, "invalid_token")
        assert issued_records(redis_client, short) == 0


# -- metadata --------------------------------------------------------------------------------


def test_issuer_metadata(anonymous: httpx.Client, issuer_id: str, server: BackgroundServer) -> None:
    response = anonymous.get("/.well-known/openid-credential-issuer")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["credential_endpoint"] == f"{issuer_id}/credential"
    assert metadata["nonce_endpoint"] == f"{issuer_id}/nonce"
    config = metadata["credential_configurations_supported"][CONFIG]
    assert config["format"] == "dc+sd-jwt"
    assert config["vct"] == server.settings.national_id_vct
    assert config["cryptographic_binding_methods_supported"] == ["jwk"]
    assert config["credential_signing_alg_values_supported"] == ["ES256"]
    assert config["proof_types_supported"] == {
        "jwt": {"proof_signing_alg_values_supported": ["ES256", "EdDSA"]}
    }
    names = {d["locale"]: d["name"] for d in config["credential_metadata"]["display"]}
    assert names == {"ar": "الهوية الوطنية", "fr": "Identité nationale", "en": "National identity"}
    labels = {
        tuple(c["path"]): {d["locale"]: d["name"] for d in c["display"]}
        for c in config["credential_metadata"]["claims"]
    }
    assert labels[("family_name#ar",)]["ar"] == "الاسم العائلي"
    # The jwks the credential is checked with is where the SD-JWT VC spec says.
    jwks = anonymous.get("/.well-known/jwt-vc-issuer").json()
    assert jwks["issuer"] == metadata["credential_issuer"]


def test_authorization_server_metadata(anonymous: httpx.Client, issuer_id: str) -> None:
    metadata = anonymous.get("/.well-known/oauth-authorization-server").json()
    assert metadata == {
        "issuer": issuer_id,
        "token_endpoint": f"{issuer_id}/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


def test_metadata_follows_the_issuer_path(settings: Settings) -> None:
    base = f"http://127.0.0.1:{settings.port}/tenant"
    with_path = settings.model_copy(update={"public_url": base})
    with (
        BackgroundServer(with_path) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as client,
    ):
        assert server.url == base
        issuer = client.get("/.well-known/openid-credential-issuer/tenant")
        assert issuer.status_code == 200, issuer.text
        assert issuer.json()["credential_issuer"] == base
        assert issuer.json()["credential_endpoint"] == f"{base}/credential"
        authorization = client.get("/.well-known/oauth-authorization-server/tenant")
        assert authorization.status_code == 200, authorization.text
        assert authorization.json()["issuer"] == base
        assert authorization.json()["token_endpoint"] == f"{base}/token"


def test_openapi_documents_every_endpoint(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in (
        ("/v1/credential-offers", "post"),
        ("/v1/credential-offers/{offer_id}", "get"),
        ("/credential-offers/{offer_id}", "get"),
        ("/token", "post"),
        ("/nonce", "post"),
        ("/credential", "post"),
        ("/.well-known/openid-credential-issuer", "get"),
        ("/.well-known/oauth-authorization-server", "get"),
    ):
        operation = paths[path][method]
        assert operation.get("description") or operation.get("summary"), path
        assert "200" in operation["responses"] or "201" in operation["responses"], path
    token = paths["/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert "400" in token["responses"]
    assert "401" in paths["/credential"]["post"]["responses"]


@pytest.fixture
def eddsa_wallet() -> Iterator[SigningKey]:
    return generate_signing_key("EdDSA")


def test_eddsa_proof(
    ready: tuple[dict[str, Any], str],
    anonymous: httpx.Client,
    eddsa_wallet: SigningKey,
    issuer_id: str,
    http: httpx.Client,
) -> None:
    _, token = ready
    response = credential_request(
        anonymous, token, body_for(proof(eddsa_wallet, nonce=new_nonce(anonymous), aud=issuer_id))
    )
    sd_jwt = assert_issued_to(response, eddsa_wallet)
    presentation = holder.present(
        sd_jwt,
        ("national_id",),
        holder_key=eddsa_wallet,
        nonce=NONCE,
        audience=AUDIENCE,
        now=int(time.time()),
    )
    verdict = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert verdict["valid"] is True
    assert verdict["key_bound"] is True
