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

This wallet understands the ``redirect_uri`` client id prefix only, the one Thiqa uses: the
request is then unsigned by definition (1.0, Client Identifier Prefixes), and the wallet's
safeguard is that the answer goes nowhere but the ``response_uri`` the client id names,
bound to that client id.
It follows no redirect, talks https (http only to this machine, for a tester's local
server) and sends no more than a fixed User-Agent (1.0, Wallet to Verifier Communication).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from service.core import holder
from service.core.encoding import EncodingError, b64url_decode, b64url_encode, json_loads
from service.core.mdoc.cbor import decode as cbor_decode
from service.core.mdoc.device_response import present as present_mdoc
from service.core.mdoc.handover import redirect_session_transcript
from service.core.openid4vp import (
    CLIENT_ID_PREFIX,
    FORMAT,
    MDOC_FORMAT,
    REQUEST_OBJECT_MEDIA_TYPE,
    REQUEST_OBJECT_TYP,
    ClaimPath,
    dotted,
    select,
)
from service.wallet.openid4vci import check_url, new_http
from service.wallet.store import MDOC, StoredCredential, Wallet, WalletError

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
    request_uri: str
    client_id: str | None


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
    #: ``dc+sd-jwt``, or ``mso_mdoc`` (then ``vct_values`` holds the one docType).
    format: str = FORMAT


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
    if parts.scheme == "openid4vp" or "request_uri" in query:
        if "request" in query:
            raise PresentationError("requests passed by value are not supported; use request_uri")
        uris, ids = query.get("request_uri", []), query.get("client_id", [])
        if len(uris) != 1 or len(ids) > 1:
            raise PresentationError("the link needs exactly one request_uri")
        return Invocation(_http_url(uris[0], "request_uri"), ids[0] if ids else None)
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


def _unsecured_claims(token: str) -> dict[str, Any]:
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
    # redirect_uri requests cannot be signed (1.0, Client Identifier Prefixes); a signature
    # this wallet cannot check is not pretended to be checked: only unsigned objects are taken.
    if header.get("alg") != "none" or parts[2]:
        raise PresentationError("signed Request Objects are not supported by this wallet")
    return claims


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
    body: bytes, content_type: str, *, expected_client_id: str | None
) -> WalletRequest:
    """Check an Authorization Request fetched from ``request_uri`` (1.0: Authorization
    Request, Request URI, direct_post)."""
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if media == REQUEST_OBJECT_MEDIA_TYPE:
            params = _unsecured_claims(text)
        elif media == "application/json":
            params = _object(json_loads(text), "the request")
        else:
            raise PresentationError("the request_uri did not answer with a Request Object")
    except (UnicodeDecodeError, EncodingError):
        raise PresentationError("the request cannot be decoded") from None
    client_id = _string(params, "client_id")
    if expected_client_id is not None and client_id != expected_client_id:
        raise PresentationError("the Request Object's client_id differs from the link's")
    if not client_id.startswith(CLIENT_ID_PREFIX):
        raise PresentationError("only the redirect_uri client id prefix is supported")
    if params.get("response_type") != "vp_token":
        raise PresentationError("response_type is not vp_token")
    if params.get("response_mode") != "direct_post":
        raise PresentationError("only response_mode direct_post is supported")
    if "redirect_uri" in params:
        raise PresentationError("redirect_uri may not accompany direct_post")
    if "transaction_data" in params:  # 1.0: a wallet without support must refuse it
        raise PresentationError("transaction_data is not supported")
    response_uri = _http_url(params.get("response_uri"), "response_uri")
    if client_id != CLIENT_ID_PREFIX + response_uri:
        raise PresentationError("response_uri is not the one the client id names")
    state = params.get("state")
    if state is not None and not isinstance(state, str):
        raise PresentationError("state is not a string")
    dcql = _object(params.get("dcql_query"), "dcql_query")
    queries = dcql.get("credentials")
    if not isinstance(queries, list) or len(queries) != 1:
        raise PresentationError("this wallet answers requests for exactly one credential")
    query = _object(queries[0], "the credential query")
    kind = query.get("format")
    if kind not in (FORMAT, MDOC_FORMAT):
        raise PresentationError(f"only the {FORMAT} and {MDOC_FORMAT} formats are supported")
    meta = _object(query.get("meta"), "meta")
    vct_values = [meta.get("doctype_value")] if kind == MDOC_FORMAT else meta.get("vct_values")
    if (
        not isinstance(vct_values, list)
        or not vct_values
        or not all(isinstance(v, str) for v in vct_values)
    ):
        raise PresentationError("meta.vct_values (or doctype_value) is missing")
    metadata = params.get("client_metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    purpose, name = metadata.get("purpose"), metadata.get("client_name")
    return WalletRequest(
        client_id=client_id,
        response_uri=response_uri,
        nonce=_string(params, "nonce"),
        state=state,
        query_id=_string(query, "id"),
        vct_values=tuple(vct_values),
        paths=_paths(query),
        purpose=purpose if isinstance(purpose, str) else None,
        client_name=name if isinstance(name, str) else None,
        format=kind,
    )


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") or body.get("error") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}" + (f" ({code})" if isinstance(code, str) else "")


def fetch_request(http: httpx.Client, invocation: Invocation) -> WalletRequest:
    try:
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
    )


def _can_disclose(credential: StoredCredential, paths: Sequence[ClaimPath]) -> bool:
    if credential.format == MDOC:
        elements = credential.payload()
        return all(len(p) == 2 and select(elements, p)[0] for p in paths)
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
        if c.format == request.format
        and c.vct in request.vct_values
        and _can_disclose(c, request.paths)
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
    if credential.format == MDOC:
        return json.dumps(
            {request.query_id: [_device_response(wallet, credential, request, claims)]}
        )
    presentation = holder.present(
        credential.credential,
        claims,
        holder_key=wallet.key(credential.key_id),
        nonce=request.nonce,
        audience=request.client_id,
        now=int(time.time()) if now is None else now,
    )
    return json.dumps({request.query_id: [presentation]})


def _device_response(
    wallet: Wallet,
    credential: StoredCredential,
    request: WalletRequest,
    claims: Sequence[ClaimPath],
) -> str:
    """A DeviceResponse with the ``[namespace, element]`` claims, device-signed over the
    request's SessionTranscript (OpenID4VP 1.0 B.2.6.1; the answer is not encrypted)."""
    key = wallet.key(credential.key_id).key
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PresentationError("an mdoc's device key must be an EC key")
    disclose: dict[str, list[str]] = {}
    for path in claims:
        if len(path) != 2:
            raise PresentationError("mdoc claims are namespace.element")
        disclose.setdefault(path[0], []).append(path[1])
    transcript = redirect_session_transcript(
        client_id=request.client_id, nonce=request.nonce, response_uri=request.response_uri
    )
    data = present_mdoc(
        cbor_decode(b64url_decode(credential.credential)),
        doctype=credential.vct,
        disclose=disclose,
        device_key=key,
        transcript=transcript,
    )
    return b64url_encode(data)


def submit(http: httpx.Client, request: WalletRequest, vp_token: str) -> tuple[int, dict[str, Any]]:
    form = {"vp_token": vp_token}
    if request.state is not None:
        form["state"] = request.state
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
        request = fetch_request(client, parse_invocation(request_text))
        credential = choose_credential(wallet, request, credential_id)
        if claims is not None and request.format == MDOC_FORMAT:
            # Namespaces hold dots themselves: an mdoc claim is namespace.element, split last.
            claims = [tuple(dotted(p).rsplit(".", 1)) for p in claims]
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
