"""A credential from a live Thiqa, presented by Thiqa's holder, in the reference verifier.

Thiqa issues over its HTTP API; the issuer key reaches the reference library only as the JWKS
Thiqa publishes at ``/.well-known/jwt-vc-issuer``, parsed by jwcrypto. The reference verifier
(PyPI ``sd-jwt``) must return exactly the disclosed claims and Thiqa's envelope, and must
refuse each tampered form of the same presentation; Thiqa refuses each of them too, with the
exact code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import InvalidJWSSignature

from service.api.server import BackgroundServer
from service.core import holder, jws
from service.core.credential import KB_TYP
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.sdjwt import digest, make_disclosure, split

from .helpers import reference_verify

NONCE = "r3f-N0nce-8841"
AUDIENCE = "https://verifier.reference.example"
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
SHOWN = ["given_name", "family_name#ar", ("place_of_birth", "locality")]
EXPECTED = {
    "given_name": "Amina",
    "family_name#ar": "الإدريسي",
    "place_of_birth": {"locality": "Fès"},
}


def _seconds(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


@pytest.fixture
def wallet() -> SigningKey:
    return generate_signing_key("ES256")


@pytest.fixture
def issued(http: httpx.Client, wallet: SigningKey) -> dict[str, Any]:
    response = http.post(
        "/v1/credentials", json={"claims": CITIZEN, "holder_jwk": public_jwk(wallet.key)}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def published_keys(anonymous: httpx.Client) -> tuple[str, dict[str, JWK]]:
    """The issuer and its keys as anyone can fetch them, read by jwcrypto, not by Thiqa."""
    body = anonymous.get("/.well-known/jwt-vc-issuer").json()
    return body["issuer"], {jwk["kid"]: JWK(**jwk) for jwk in body["jwks"]["keys"]}


@pytest.fixture
def presentation(issued: dict[str, Any], wallet: SigningKey) -> str:
    return holder.present(
        issued["credential"],
        SHOWN,
        holder_key=wallet,
        nonce=NONCE,
        audience=AUDIENCE,
        now=int(time.time()),
    )


def test_reference_verifier_accepts_a_thiqa_presentation(
    server: BackgroundServer,
    issued: dict[str, Any],
    wallet: SigningKey,
    published_keys: tuple[str, dict[str, JWK]],
    presentation: str,
) -> None:
    issuer, keys = published_keys
    assert issuer == server.url
    # HAIP: the credential carries its x5c chain beside kid; the reference library, which
    # reads the key by kid from the JWKS, is not thrown by it.
    header, *_ = jws.decode_compact(presentation.split("~", 1)[0])
    assert header["kid"]
    assert header["x5c"]
    verified = reference_verify(
        presentation, issuer=issuer, keys=keys, nonce=NONCE, audience=AUDIENCE
    )
    envelope = {
        "iss": server.url,
        "iat": _seconds(issued["issued_at"]),
        "exp": _seconds(issued["expires_at"]),
        "vct": server.settings.national_id_vct,
        "status": issued["status"],
        "cnf": {"jwk": public_jwk(wallet.key)},
    }
    assert {k: v for k, v in verified.items() if k in envelope} == envelope
    assert {k: v for k, v in verified.items() if k not in envelope} == EXPECTED


def test_the_same_presentation_is_valid_in_thiqa(http: httpx.Client, presentation: str) -> None:
    """The baseline the tampered forms below depart from."""
    body = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert body["valid"] is True, body
    assert body["claims"] == EXPECTED


# --- tampering ------------------------------------------------------------------------------


def _kb(body: str, key: SigningKey, *, nonce: str = NONCE) -> str:
    claims = {"iat": int(time.time()), "aud": AUDIENCE, "nonce": nonce, "sd_hash": digest(body)}
    return jws.encode(claims, key, typ=KB_TYP, include_kid=False)


def _body(presentation: str) -> tuple[str, list[str], str]:
    parts = split(presentation)
    assert parts.kb_jwt is not None
    return parts.issuer_jwt, list(parts.disclosures), parts.kb_jwt


def _join(issuer_jwt: str, disclosures: list[str], kb: str) -> str:
    return issuer_jwt + "~" + "".join(d + "~" for d in disclosures) + kb


@dataclass(frozen=True)
class Genuine:
    """What an attacker starts from: a valid presentation and the credential behind it."""

    presentation: str
    credential: str
    wallet: SigningKey


def altered_payload(genuine: Genuine) -> str:
    """The issuer JWT's payload edited (a later ``exp``), its signature kept."""
    issuer_jwt, disclosures, kb = _body(genuine.presentation)
    head, payload, signature = issuer_jwt.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["exp"] += 10 * 365 * 86400
    payload = b64url_encode(json_dumps(claims).encode("utf-8"))
    return _join(f"{head}.{payload}.{signature}", disclosures, kb)


def forged_signature(genuine: Genuine) -> str:
    """The issuer JWT re-signed by a key that is not the issuer's, same ``kid``."""
    issuer_jwt, disclosures, kb = _body(genuine.presentation)
    head, payload, _ = issuer_jwt.split(".")
    signature = generate_signing_key("ES256").sign(f"{head}.{payload}".encode("ascii"))
    return _join(f"{head}.{payload}.{b64url_encode(signature)}", disclosures, kb)


def substituted_disclosure(genuine: Genuine) -> str:
    """``given_name`` swapped for a disclosure the issuer never made, KB left as it was."""
    issuer_jwt, disclosures, kb = _body(genuine.presentation)
    target = next(d for d in disclosures if json.loads(b64url_decode(d))[1] == "given_name")
    fake = make_disclosure("Admin", name="given_name").encoded
    return _join(issuer_jwt, [fake if d == target else d for d in disclosures], kb)


def kb_by_another_key(genuine: Genuine) -> str:
    """A thief's KB-JWT: right nonce, audience and sd_hash, wrong key."""
    issuer_jwt, disclosures, _ = _body(genuine.presentation)
    body = _join(issuer_jwt, disclosures, "")
    return body + _kb(body, generate_signing_key("ES256"))


def kb_for_another_nonce(genuine: Genuine) -> str:
    """A genuine KB-JWT made for another verifier's nonce (a replay)."""
    issuer_jwt, disclosures, _ = _body(genuine.presentation)
    body = _join(issuer_jwt, disclosures, "")
    return body + _kb(body, genuine.wallet, nonce="someone-elses-nonce")


def disclosure_added_after_binding(genuine: Genuine) -> str:
    """A valid disclosure of the same credential slipped in after the KB-JWT was made."""
    issuer_jwt, disclosures, kb = _body(genuine.presentation)
    extra = holder.present(genuine.credential, ["birthdate"])
    birthdate = [d for d in split(extra).disclosures if d not in disclosures]
    assert len(birthdate) == 1
    return _join(issuer_jwt, [*disclosures, *birthdate], kb)


TAMPERED: dict[str, tuple[Callable[[Genuine], str], type[Exception], str, list[str]]] = {
    # name: (tamper, reference library's error, its message, Thiqa's codes)
    "altered payload": (
        altered_payload,
        InvalidJWSSignature,
        "Verification failed",
        ["invalid_signature"],
    ),
    "forged signature": (
        forged_signature,
        InvalidJWSSignature,
        "Verification failed",
        ["invalid_signature"],
    ),
    "substituted disclosure": (
        substituted_disclosure,
        ValueError,
        "Invalid digest in KB-JWT",
        ["invalid_disclosure", "invalid_key_binding"],
    ),
    "disclosure added after binding": (
        disclosure_added_after_binding,
        ValueError,
        "Invalid digest in KB-JWT",
        ["invalid_key_binding"],
    ),
    "KB-JWT by another key": (
        kb_by_another_key,
        InvalidJWSSignature,
        "Verification failed",
        ["invalid_key_binding"],
    ),
    "KB-JWT for another nonce": (
        kb_for_another_nonce,
        ValueError,
        "Invalid nonce in KB-JWT",
        ["nonce_mismatch"],
    ),
}


@pytest.mark.parametrize("name", list(TAMPERED))
def test_reference_verifier_and_thiqa_refuse_a_tampered_presentation(
    http: httpx.Client,
    issued: dict[str, Any],
    wallet: SigningKey,
    published_keys: tuple[str, dict[str, JWK]],
    presentation: str,
    name: str,
) -> None:
    tamper, error, message, codes = TAMPERED[name]
    tampered = tamper(Genuine(presentation, issued["credential"], wallet))
    assert tampered != presentation
    issuer, keys = published_keys

    with pytest.raises(error, match=message):
        reference_verify(tampered, issuer=issuer, keys=keys, nonce=NONCE, audience=AUDIENCE)

    body = http.post(
        "/v1/verify", json={"credential": tampered, "nonce": NONCE, "audience": AUDIENCE}
    ).json()
    assert [e["code"] for e in body["errors"]] == codes, body
    assert body["valid"] is False
    assert body["claims"] is None
