"""The test wallet's side of OpenID4VP 1.0: fetch a request, pick a credential, answer it.

Steps, each a function so a test can stop, change or skip one:

1. :func:`parse_invocation`: ``openid4vp://?client_id=...&request_uri=...`` (or a universal
   link with the same query, or the bare ``request_uri``);
2. :func:`fetch_request`: GET the Request Object and check it (:func:`read_request`);
3. :func:`choose_credential`: a stored credential of a requested ``vct`` that can disclose
   every requested claim (or the tester's pick);
4. :func:`build_vp_token`: a presentation disclosing exactly the requested claims (or the
   tester's choice), with a KB-JWT over the request's ``nonce`` and ``aud`` = ``client_id``;
5. :func:`submit`: POST ``vp_token`` and ``state`` to ``response_uri`` (``direct_post``).

Signed requests (``x509_hash``, HAIP 1.0's prefix, and ``x509_san_dns``) are answered only
when the Request Object's ``x5c`` chain builds to a root in the wallet's relying-party trust
store (``thiqa wallet trust add ROOT.pem``), the signature verifies with the leaf's key and
the client id names that leaf (its SHA-256 hash, or a SAN DNS name that is also the
``response_uri``'s host). ``redirect_uri`` requests are unsigned by definition (1.0, Client
Identifier Prefixes): the answer then goes nowhere but the ``response_uri`` the client id
names. Answers to ``direct_post.jwt`` requests are encrypted to the request's key.
It follows no redirect, talks https (http only to this machine, for a tester's local
server) and sends no more than a fixed User-Agent (1.0, Wallet to Verifier Communication).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509

from service.core import holder, jws
from service.core.encoding import EncodingError, b64url_decode, json_loads
from service.core.jwe import ENCRYPTION_ALG, ENCRYPTION_VALUES, encrypt_response
from service.core.keys import InvalidSignatureError
from service.core.openid4vp import (
    CLIENT_ID_PREFIX,
    FORMAT,
    REQUEST_OBJECT_MEDIA_TYPE,
    REQUEST_OBJECT_TYP,
    X509_HASH,
    X509_SAN_DNS,
    ClaimPath,
    dotted,
    select,
)
from service.core.reasons import VerificationFailure
from service.core.x509 import certificate_hash, parse_x5c, validate_chain
from service.wallet.openid4vci import check_url, new_http
from service.wallet.store import StoredCredential, Wallet, WalletError

__all__ = [
    "Invocation",
    "PresentResult",
    "PresentationError",
    "WalletRequest",
    "build_vp_token",
    "choose_credential",
    "describe",
    "fetch_request",
    "new_http",
    "parse_claims",
    "parse_invocation",
    "present",
    "read_request",
    "submit",
]

_ACCEPT = f"{REQUEST_OBJECT_MEDIA_TYPE}, application/json;q=0.5"
#: What :func:`present` sends when it makes its own client: a fixed word that tells a
#: verifier nothing about the holder or the software.
USER_AGENT = "wallet"


class PresentationError(WalletError):
    """The wallet cannot (or will not) answer; the message is safe to print."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """How the request reached the wallet: by reference (``request_uri``), signed by value
    (``request``) or as plain parameters (an unsigned request by value)."""

    request_uri: str | None
    client_id: str | None
    request_uri_method: str = "get"
    request: str | None = None
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WalletRequest:
    """An Authorization Request as this wallet understood and checked it."""

    client_id: str
    response_uri: str
    nonce: str
    state: str | None
    query_id: str
    vct_values: tuple[str, ...]
    paths: tuple[ClaimPath, ...]
    purpose: str | None
    client_name: str | None
    response_mode: str = "direct_post"
    #: The verifier's public key to encrypt the answer to (``direct_post.jwt``).
    encryption_jwk: Mapping[str, Any] | None = field(default=None, repr=False)
    enc: str = "A128GCM"
    #: Whether the request was signed and its certificate checked.
    verified_signer: bool = False


@dataclass(frozen=True, slots=True)
class PresentResult:
    request: WalletRequest
    credential_id: str
    disclosed: tuple[ClaimPath, ...]
    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.status == 200


def _http_url(value: Any, what: str) -> str:
    """https, or http to this machine only: the same rule as for credential offers."""
    if not isinstance(value, str):
        raise PresentationError(f"{what} is not a URL")
    try:
        return check_url(value, what)
    except WalletError as exc:
        raise PresentationError(str(exc)) from None


def parse_invocation(text: str) -> Invocation:
    text = text.strip()
    parts = urlsplit(text)
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.scheme == "openid4vp" or "request_uri" in query or "request" in query:
        if any(len(values) != 1 for values in query.values()):
            raise PresentationError("a parameter of the link appears more than once")
        flat = {name: values[0] for name, values in query.items()}
        client_id = flat.get("client_id")
        if "request_uri" in flat:
            method = flat.get("request_uri_method", "get")
            if method not in ("get", "post"):
                raise PresentationError("request_uri_method must be get or post")
            return Invocation(_http_url(flat["request_uri"], "request_uri"), client_id, method)
        if "request" in flat:
            return Invocation(None, client_id, request=flat["request"])
        if "response_type" in flat:
            parameters: dict[str, Any] = dict(flat)
            for name in ("dcql_query", "client_metadata"):
                if name in parameters:
                    try:
                        parameters[name] = json_loads(parameters[name])
                    except EncodingError:
                        raise PresentationError(f"{name} is not JSON") from None
            return Invocation(None, client_id, parameters=parameters)
        raise PresentationError("the link has neither request_uri, request nor parameters")
    return Invocation(_http_url(text, "the request"), None)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PresentationError(f"{what} is not a JSON object")
    return value


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise PresentationError(f"the request has no {name}")
    return value


@dataclass(frozen=True, slots=True)
class _Checked:
    """A Request Object's claims, and the leaf certificate that signed them (if any)."""

    claims: dict[str, Any]
    leaf: x509.Certificate | None = None
    san_dns: frozenset[str] = frozenset()


def _request_object_claims(token: str, *, trust: Sequence[x509.Certificate], now: int) -> _Checked:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise PresentationError("the Request Object is not a JWT")
    try:
        header = _object(json_loads(b64url_decode(parts[0])), "the JWT header")
        claims = _object(json_loads(b64url_decode(parts[1])), "the JWT payload")
    except EncodingError:
        raise PresentationError("the Request Object cannot be decoded") from None
    if header.get("typ") != REQUEST_OBJECT_TYP:
        raise PresentationError(f"the Request Object's typ is not {REQUEST_OBJECT_TYP}")
    if header.get("alg") == "none":
        # Only a redirect_uri request may be unsigned; read_request holds it to that.
        if parts[2]:
            raise PresentationError("an unsigned Request Object has a signature")
        return _Checked(claims)
    try:
        token_jws = jws.parse(token.strip(), typ=frozenset({REQUEST_OBJECT_TYP}))
        chain = parse_x5c(header.get("x5c"))
        validated = validate_chain(chain, anchors=trust, now=now)
        key = validated.verification_key()
    except VerificationFailure as failure:
        # The verdict code says why: untrusted_certificate, certificate_expired...
        raise PresentationError(
            f"the request's certificate is not trusted ({failure.reason.value})"
        ) from None
    try:
        if key.alg != token_jws.alg:
            raise InvalidSignatureError
        key.verify(token_jws.signature, token_jws.signing_input)
    except InvalidSignatureError:
        raise PresentationError("the Request Object's signature does not verify") from None
    return _Checked(claims, validated.leaf, validated.san_dns)


def _check_client_id(client_id: str, checked: _Checked, response_uri: str | None) -> None:
    """The client id must name the certificate that signed the request (1.0 §5.9.3)."""
    prefix, _, value = client_id.partition(":")
    if prefix == X509_HASH:
        if checked.leaf is None or value != certificate_hash(checked.leaf):
            raise PresentationError("x509_hash does not match the request's certificate")
    elif prefix == X509_SAN_DNS:
        if checked.leaf is None or value.lower() not in checked.san_dns:
            raise PresentationError("x509_san_dns names no DNS name of the certificate")
        host = urlsplit(response_uri).hostname if response_uri else None
        if host is not None and host.lower() != value.lower():
            raise PresentationError("the response_uri is not on the certificate's host")
    elif client_id.startswith(CLIENT_ID_PREFIX):
        if checked.leaf is not None:
            raise PresentationError("a redirect_uri request cannot be signed")
    else:
        raise PresentationError("unsupported client id prefix")


def _encryption(metadata: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The key and ``enc`` to encrypt the answer with, from ``client_metadata``."""
    jwks = metadata.get("jwks")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    usable = [
        k
        for k in keys or []
        if isinstance(k, dict)
        and k.get("kty") == "EC"
        and k.get("crv") == "P-256"
        and k.get("alg", ENCRYPTION_ALG) == ENCRYPTION_ALG
        and k.get("use", "enc") == "enc"
    ]
    if not usable:
        raise PresentationError("the request offers no P-256 ECDH-ES key to encrypt to")
    offered = metadata.get("encrypted_response_enc_values_supported", ["A128GCM"])
    enc = next((e for e in ENCRYPTION_VALUES if isinstance(offered, list) and e in offered), None)
    if enc is None:
        raise PresentationError("the request offers no content encryption this wallet has")
    return usable[0], enc


def _paths(query: dict[str, Any]) -> tuple[ClaimPath, ...]:
    if "claim_sets" in query:
        raise PresentationError("claim_sets are not supported by this wallet")
    claims = query.get("claims", [])
    if not isinstance(claims, list):
        raise PresentationError("the query's claims are not a list")
    paths: list[ClaimPath] = []
    for item in claims:
        path = _object(item, "a claims query").get("path")
        if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
            raise PresentationError("only claims paths of member names are supported")
        paths.append(tuple(path))
    return tuple(paths)


def read_request(
    body: bytes,
    content_type: str,
    *,
    expected_client_id: str | None,
    trust: Sequence[x509.Certificate] = (),
    now: int | None = None,
    wallet_nonce: str | None = None,
) -> WalletRequest:
    """Check an Authorization Request fetched from ``request_uri`` (1.0: Authorization
    Request, Request URI, direct_post)."""
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if media == REQUEST_OBJECT_MEDIA_TYPE:
            checked = _request_object_claims(
                text, trust=trust, now=int(time.time()) if now is None else now
            )
        elif media == "application/json":
            checked = _Checked(_object(json_loads(text), "the request"))
        else:
            raise PresentationError("the request_uri did not answer with a Request Object")
    except (UnicodeDecodeError, EncodingError):
        raise PresentationError("the request cannot be decoded") from None
    if wallet_nonce is not None and checked.claims.get("wallet_nonce") != wallet_nonce:
        raise PresentationError("the Request Object does not echo this wallet's nonce")
    return check_parameters(checked, expected_client_id=expected_client_id)


def check_parameters(checked: _Checked, *, expected_client_id: str | None) -> WalletRequest:
    params = checked.claims
    client_id = _string(params, "client_id")
    if expected_client_id is not None and client_id != expected_client_id:
        raise PresentationError("the Request Object's client_id differs from the link's")
    if params.get("response_type") != "vp_token":
        raise PresentationError("response_type is not vp_token")
    response_mode = params.get("response_mode")
    if response_mode not in ("direct_post", "direct_post.jwt"):
        raise PresentationError("only response_mode direct_post(.jwt) is supported")
    if "redirect_uri" in params:
        raise PresentationError("redirect_uri may not accompany direct_post")
    if "transaction_data" in params:  # 1.0: a wallet without support must refuse it
        raise PresentationError("transaction_data is not supported")
    response_uri = _http_url(params.get("response_uri"), "response_uri")
    _check_client_id(client_id, checked, response_uri)
    if client_id.startswith(CLIENT_ID_PREFIX) and client_id != CLIENT_ID_PREFIX + response_uri:
        raise PresentationError("response_uri is not the one the client id names")
    state = params.get("state")
    if state is not None and not isinstance(state, str):
        raise PresentationError("state is not a string")
    dcql = _object(params.get("dcql_query"), "dcql_query")
    queries = dcql.get("credentials")
    if not isinstance(queries, list) or len(queries) != 1:
        raise PresentationError("this wallet answers requests for exactly one credential")
    query = _object(queries[0], "the credential query")
    if query.get("format") != FORMAT:
        raise PresentationError(f"only the {FORMAT} format is supported")
    vct_values = _object(query.get("meta"), "meta").get("vct_values")
    if (
        not isinstance(vct_values, list)
        or not vct_values
        or not all(isinstance(v, str) for v in vct_values)
    ):
        raise PresentationError("meta.vct_values is missing")
    metadata = params.get("client_metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    purpose, name = metadata.get("purpose"), metadata.get("client_name")
    encryption_jwk, enc = (
        _encryption(metadata) if response_mode == "direct_post.jwt" else (None, "A128GCM")
    )
    return WalletRequest(
        response_mode=response_mode,
        encryption_jwk=encryption_jwk,
        enc=enc,
        verified_signer=checked.leaf is not None,
        client_id=client_id,
        response_uri=response_uri,
        nonce=_string(params, "nonce"),
        state=state,
        query_id=_string(query, "id"),
        vct_values=tuple(vct_values),
        paths=_paths(query),
        purpose=purpose if isinstance(purpose, str) else None,
        client_name=name if isinstance(name, str) else None,
    )


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") or body.get("error") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}" + (f" ({code})" if isinstance(code, str) else "")


def fetch_request(
    http: httpx.Client,
    invocation: Invocation,
    *,
    trust: Sequence[x509.Certificate] = (),
    now: int | None = None,
) -> WalletRequest:
    """The request, fetched if passed by reference, checked in every case."""
    if invocation.request is not None:
        return read_request(
            invocation.request.encode("ascii", "replace"),
            REQUEST_OBJECT_MEDIA_TYPE,
            expected_client_id=invocation.client_id,
            trust=trust,
            now=now,
        )
    if invocation.parameters is not None:
        # Unsigned by value: only a redirect_uri request may come this way.
        return check_parameters(
            _Checked(dict(invocation.parameters)), expected_client_id=invocation.client_id
        )
    assert invocation.request_uri is not None
    wallet_nonce: str | None = None
    try:
        if invocation.request_uri_method == "post":
            wallet_nonce = secrets.token_urlsafe(16)
            response = http.post(
                invocation.request_uri,
                data={"wallet_nonce": wallet_nonce},
                headers={"Accept": REQUEST_OBJECT_MEDIA_TYPE},
            )
        else:
            response = http.get(invocation.request_uri, headers={"Accept": _ACCEPT})
    except httpx.HTTPError as exc:
        raise PresentationError(f"cannot fetch the request: {type(exc).__name__}") from None
    if response.status_code != 200:
        # 1.0 (Request URI Error Response): any HTTP error ends the process.
        raise PresentationError(f"the verifier refused the request: {_refusal(response)}")
    return read_request(
        response.content,
        response.headers.get("content-type", ""),
        expected_client_id=invocation.client_id,
        trust=trust,
        now=now,
        wallet_nonce=wallet_nonce,
    )


def _can_disclose(credential: StoredCredential, paths: Sequence[ClaimPath]) -> bool:
    disclosable = set(holder.disclosable_paths(credential.credential))
    payload = credential.payload()
    return all(path in disclosable or select(payload, path)[0] for path in paths)


def choose_credential(
    wallet: Wallet, request: WalletRequest, credential_id: str | None = None
) -> StoredCredential:
    """The newest credential of a requested type that can disclose every requested claim;
    or the tester's pick, as is (a test may want to present the wrong one)."""
    if credential_id is not None:
        try:
            return wallet.get(credential_id)
        except WalletError as exc:
            raise PresentationError(str(exc)) from None
    matching = [
        c
        for c in wallet.credentials()
        if c.format == FORMAT and c.vct in request.vct_values and _can_disclose(c, request.paths)
    ]
    if not matching:
        raise PresentationError("no credential in the wallet matches the request")
    return max(matching, key=lambda c: c.received_at)


def build_vp_token(
    wallet: Wallet,
    credential: StoredCredential,
    request: WalletRequest,
    claims: Sequence[ClaimPath],
    *,
    now: int | None = None,
) -> str:
    presentation = holder.present(
        credential.credential,
        claims,
        holder_key=wallet.key(credential.key_id),
        nonce=request.nonce,
        audience=request.client_id,
        now=int(time.time()) if now is None else now,
    )
    return json.dumps({request.query_id: [presentation]})


def submit(http: httpx.Client, request: WalletRequest, vp_token: str) -> tuple[int, dict[str, Any]]:
    form = {"vp_token": vp_token}
    if request.state is not None:
        form["state"] = request.state
    if request.encryption_jwk is not None:
        # direct_post.jwt: every parameter inside the JWE, vp_token as the JSON object it is.
        inner: dict[str, Any] = {"vp_token": json.loads(vp_token)}
        if request.state is not None:
            inner["state"] = request.state
        form = {
            "response": encrypt_response(inner, public_jwk=request.encryption_jwk, enc=request.enc)
        }
    try:
        response = http.post(request.response_uri, data=form)
    except httpx.HTTPError as exc:
        raise PresentationError(f"cannot send the answer: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def parse_claims(text: str) -> tuple[ClaimPath, ...]:
    """``given_name,place_of_birth.locality`` as claims paths."""
    paths = tuple(tuple(item.strip().split(".")) for item in text.split(",") if item.strip())
    if any(not all(path) for path in paths):  # an empty name: "a..b", "a."
        raise PresentationError("claims are names separated by commas, nested with dots")
    return paths


def present(
    request_text: str,
    *,
    wallet: Wallet,
    claims: Sequence[ClaimPath] | None = None,
    credential_id: str | None = None,
    http: httpx.Client | None = None,
    now: int | None = None,
) -> PresentResult:
    """Answer the request ``request_text`` names, from ``wallet``. ``claims`` overrides what
    is disclosed (default: exactly the requested claims)."""
    own = http is None
    client = new_http(user_agent=USER_AGENT) if http is None else http
    try:
        request = fetch_request(
            client, parse_invocation(request_text), trust=wallet.trust_anchors(), now=now
        )
        credential = choose_credential(wallet, request, credential_id)
        disclosed = tuple(claims) if claims is not None else request.paths
        vp_token = build_vp_token(wallet, credential, request, disclosed, now=now)
        status, body = submit(client, request, vp_token)
    finally:
        if own:
            client.close()
    return PresentResult(
        request=request, credential_id=credential.id, disclosed=disclosed, status=status, body=body
    )


def describe(paths: Sequence[ClaimPath]) -> str:
    return ", ".join(dotted(p) for p in paths) or "(no claims)"
