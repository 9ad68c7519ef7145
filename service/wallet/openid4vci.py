"""The test wallet's side of OpenID4VCI 1.0, pre-authorized code flow.

Steps, each a function a test can call on its own:

1. :func:`read_offer`: the offer from an ``openid-credential-offer://`` URI (by value or by
   reference), an https link carrying the same query, or the https URL of the offer itself;
2. :func:`discover`: the Credential Issuer metadata and the authorization server's, each
   checked to name the identifier it was fetched for (§12.2.3, RFC 8414 §3.3);
3. :func:`redeem`: the pre-authorized code (and transaction code) for an access token;
4. :func:`request_credential`: a c_nonce, a key proof made with a NEW key of the wallet, and
   the credential;
5. :func:`check_credential`: the issuer's signature against the JWKS it publishes at
   ``/.well-known/jwt-vc-issuer``, the times and disclosures, and that ``cnf`` is that key.

:func:`accept` runs them all and stores the credential. The wallet treats everything in an
offer as untrusted (§13.5): it speaks only https (or http to this machine, for testing),
follows no redirect, and compares every identifier it is handed with the one it asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from service.core import jws
from service.core.encoding import EncodingError, b64url_decode, json_loads
from service.core.keys import JWKError, SigningKey, VerificationKey, parse_public_jwk, public_jwk
from service.core.mdoc.cbor import decode as cbor_decode
from service.core.mdoc.issuer_signed import check_issuer_signed
from service.core.openid4vci import PRE_AUTHORIZED_GRANT, PROOF_TYP, well_known_path
from service.core.reasons import Reason, VerificationFailure
from service.core.verify import Expectations, Policy, TrustedIssuer, inspect
from service.wallet.store import MDOC, StoredCredential, Wallet, WalletError, credential_payload

__all__ = [
    "Discovery",
    "Offer",
    "accept",
    "check_credential",
    "discover",
    "issuer_keys",
    "new_http",
    "read_offer",
    "redeem",
    "request_credential",
]

OFFER_SCHEME = "openid-credential-offer"
FORMAT = "dc+sd-jwt"
MAX_DOCUMENT = 256 * 1024


@dataclass(frozen=True, slots=True)
class Offer:
    credential_issuer: str
    configuration_ids: tuple[str, ...]
    pre_authorized_code: str
    tx_code: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Discovery:
    credential_issuer: str
    configuration_id: str
    #: ``dc+sd-jwt``: the configuration's ``vct``; ``mso_mdoc``: its ``doctype``.
    vct: str
    credential_endpoint: str
    nonce_endpoint: str | None
    token_endpoint: str
    proof_algs: tuple[str, ...]
    format: str = FORMAT


def new_http(timeout: float = 10.0, *, user_agent: str = "Thiqa test wallet") -> httpx.Client:
    """The wallet's HTTP client, for both flows: no redirects, no proxy or netrc from the
    environment, a fixed User-Agent."""
    return httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, headers={"User-Agent": user_agent}
    )


def check_url(url: str, what: str) -> str:
    """https, or http to this machine only (a tester's local server)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _loopback(host):
        return url
    raise WalletError(f"{what} must be an https URL (http only to this machine): {url!r}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _get_json(
    http: httpx.Client, url: str, what: str, *, gone: str | None = None
) -> dict[str, Any]:
    """``gone``: what a 404 or 410 means here, said in words (a tester who sees only
    "HTTP 404" for a spent offer has to guess)."""
    check_url(url, what)
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise WalletError(f"{what} could not be fetched from {url}: {exc}") from exc
    if gone is not None and response.status_code in (404, 410):
        raise WalletError(f"{what} at {url} {gone} (HTTP {response.status_code})")
    if response.status_code != 200:
        raise WalletError(f"{what} at {url} answered HTTP {response.status_code}")
    if len(response.content) > MAX_DOCUMENT:
        raise WalletError(f"{what} is too large")
    try:
        document = json_loads(response.content)
    except EncodingError as exc:
        raise WalletError(f"{what} is not JSON") from exc
    if not isinstance(document, dict):
        raise WalletError(f"{what} is not a JSON object")
    return document


def _well_known(identifier: str, name: str) -> str:
    parts = urlsplit(identifier)
    return f"{parts.scheme}://{parts.netloc}{well_known_path(name, identifier)}"


# -- 1. the offer ----------------------------------------------------------------------------


def _parse_offer(document: Any) -> Offer:
    if not isinstance(document, dict):
        raise WalletError("the credential offer is not a JSON object")
    issuer = document.get("credential_issuer")
    ids = document.get("credential_configuration_ids")
    if not isinstance(issuer, str) or not issuer:
        raise WalletError("the credential offer names no credential_issuer")
    check_url(issuer, "credential_issuer")
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, str) for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise WalletError("the credential offer's credential_configuration_ids are invalid")
    grants = document.get("grants")
    grant = grants.get(PRE_AUTHORIZED_GRANT) if isinstance(grants, dict) else None
    if not isinstance(grant, dict):
        raise WalletError("the offer has no pre-authorized code (only that flow is supported)")
    code = grant.get("pre-authorized_code")
    if not isinstance(code, str) or not code:
        raise WalletError("the offer's pre-authorized_code is missing")
    tx_code = grant.get("tx_code")
    if tx_code is not None and not isinstance(tx_code, dict):
        raise WalletError("the offer's tx_code is not an object")
    return Offer(
        credential_issuer=issuer,
        configuration_ids=tuple(ids),
        pre_authorized_code=code,
        tx_code=tx_code,
    )


#: An issuer serves an offer only while its code can be redeemed (OpenID4VCI §4.1.3).
_OFFER_GONE = (
    "is no longer available: it was already accepted, has expired, or was withdrawn "
    "after wrong PINs; ask the issuer for a new offer"
)


def read_offer(text: str, http: httpx.Client) -> Offer:
    """The offer behind ``text``: an offer URI or link (by value or by reference), or the
    https URL where the offer object itself is served."""
    text = text.strip()
    parts = urlsplit(text)
    query = parse_qs(parts.query)
    if parts.scheme == OFFER_SCHEME or {"credential_offer", "credential_offer_uri"} & set(query):
        by_value = query.get("credential_offer", [])
        by_reference = query.get("credential_offer_uri", [])
        if len(by_value) + len(by_reference) != 1:
            raise WalletError(
                "an offer URI carries exactly one of credential_offer and credential_offer_uri"
            )
        if by_value:
            try:
                return _parse_offer(json_loads(by_value[0]))
            except EncodingError as exc:
                raise WalletError("the credential_offer parameter is not JSON") from exc
        return _parse_offer(
            _get_json(http, by_reference[0], "the credential offer", gone=_OFFER_GONE)
        )
    if parts.scheme in ("https", "http"):
        return _parse_offer(_get_json(http, text, "the credential offer", gone=_OFFER_GONE))
    raise WalletError(
        "not a credential offer: give an openid-credential-offer:// URI, an "
        "https offer URL or a PNG of the QR code"
    )


# -- 2. metadata -----------------------------------------------------------------------------


def discover(offer: Offer, http: httpx.Client) -> Discovery:
    issuer = offer.credential_issuer
    metadata = _get_json(
        http, _well_known(issuer, "openid-credential-issuer"), "the credential issuer metadata"
    )
    if metadata.get("credential_issuer") != issuer:
        # §12.2.4: data from metadata naming another issuer must not be used.
        raise WalletError("the issuer metadata names another credential_issuer")
    configurations = metadata.get("credential_configurations_supported")
    if not isinstance(configurations, dict):
        raise WalletError("the issuer metadata has no credential_configurations_supported")
    chosen = None
    for configuration_id in offer.configuration_ids:
        config = configurations.get(configuration_id)
        if isinstance(config, dict) and config.get("format") in (FORMAT, MDOC):
            chosen = configuration_id, config
            break
    if chosen is None:
        raise WalletError(f"the offer holds no {FORMAT} or {MDOC} credential this wallet can take")
    configuration_id, config = chosen
    kind = config["format"]
    vct = config.get("doctype" if kind == MDOC else "vct")
    if not isinstance(vct, str) or not vct:
        raise WalletError("the credential configuration has no vct (or doctype)")
    proof_types = config.get("proof_types_supported") or {}
    jwt_proofs = proof_types.get("jwt") if isinstance(proof_types, dict) else None
    algs = (
        tuple(jwt_proofs.get("proof_signing_alg_values_supported", []))
        if isinstance(jwt_proofs, dict)
        else ()
    )
    if "ES256" not in algs:
        raise WalletError("the issuer does not take ES256 jwt key proofs, the wallet's kind")
    servers = metadata.get("authorization_servers")
    auth_server = issuer
    if isinstance(servers, list) and servers and isinstance(servers[0], str):
        auth_server = servers[0]
    check_url(auth_server, "the authorization server")
    auth = _get_json(
        http,
        _well_known(auth_server, "oauth-authorization-server"),
        "the authorization server metadata",
    )
    if auth.get("issuer") != auth_server:
        raise WalletError("the authorization server metadata names another issuer")
    token_endpoint = auth.get("token_endpoint")
    credential_endpoint = metadata.get("credential_endpoint")
    nonce_endpoint = metadata.get("nonce_endpoint")
    if not isinstance(token_endpoint, str) or not isinstance(credential_endpoint, str):
        raise WalletError("the metadata lacks a token or credential endpoint")
    return Discovery(
        credential_issuer=issuer,
        configuration_id=configuration_id,
        vct=vct,
        credential_endpoint=check_url(credential_endpoint, "credential_endpoint"),
        nonce_endpoint=check_url(nonce_endpoint, "nonce_endpoint")
        if isinstance(nonce_endpoint, str)
        else None,
        token_endpoint=check_url(token_endpoint, "token_endpoint"),
        proof_algs=algs,
        format=kind,
    )


# -- 3. token --------------------------------------------------------------------------------


def _answer(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON object ``response`` holds; anything else is the issuer's fault, reported as
    such (never a traceback in the tester's terminal)."""
    try:
        body = json_loads(response.content)
    except EncodingError:
        body = None
    if not isinstance(body, dict):
        raise WalletError(f"{what} answered HTTP {response.status_code} without a JSON object")
    return body


def _oauth_error(response: httpx.Response, step: str) -> WalletError:
    try:
        body = _answer(response, step)
    except WalletError:
        return WalletError(f"{step} refused: HTTP {response.status_code}")
    error, description = body.get("error", "?"), body.get("error_description") or ""
    return WalletError(f"{step} refused: {error}" + (f" ({description})" if description else ""))


def redeem(offer: Offer, discovery: Discovery, http: httpx.Client, pin: str | None) -> str:
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": offer.pre_authorized_code}
    if offer.tx_code is not None:
        if not pin:
            length = offer.tx_code.get("length")
            hint = f" ({length} digits)" if isinstance(length, int) else ""
            raise WalletError(f"this offer needs its transaction code{hint}: pass --pin")
        form["tx_code"] = pin
    try:
        response = http.post(discovery.token_endpoint, data=form)
    except httpx.HTTPError as exc:
        raise WalletError(f"the token endpoint could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise _oauth_error(response, "the token request")
    token = _answer(response, "the token endpoint")
    if (
        str(token.get("token_type", "")).lower() != "bearer"
        or not isinstance(token.get("access_token"), str)
        or not token["access_token"]
    ):
        raise WalletError("the token endpoint answered no Bearer access token")
    return str(token["access_token"])


# -- 4. credential ---------------------------------------------------------------------------


def make_proof(key: SigningKey, *, audience: str, nonce: str | None, now: int) -> str:
    claims: dict[str, Any] = {"aud": audience, "iat": now}
    if nonce is not None:
        claims["nonce"] = nonce
    return jws.encode(
        claims, key, typ=PROOF_TYP, include_kid=False, extra_header={"jwk": public_jwk(key.key)}
    )


def request_credential(
    discovery: Discovery, http: httpx.Client, access_token: str, key: SigningKey
) -> str:
    nonce = None
    try:
        if discovery.nonce_endpoint is not None:
            answer = http.post(discovery.nonce_endpoint)
            nonce = _answer(answer, "the nonce endpoint").get("c_nonce")
            if answer.status_code != 200 or not isinstance(nonce, str):
                raise WalletError("the nonce endpoint answered no c_nonce")
        proof = make_proof(
            key, audience=discovery.credential_issuer, nonce=nonce, now=int(time.time())
        )
        response = http.post(
            discovery.credential_endpoint,
            json={
                "credential_configuration_id": discovery.configuration_id,
                "proofs": {"jwt": [proof]},
            },
            headers={"Authorization": f"Bearer {access_token}"},
        )
    except httpx.HTTPError as exc:
        raise WalletError(f"the credential endpoint could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise _oauth_error(response, "the credential request")
    credentials = _answer(response, "the credential endpoint").get("credentials")
    if (
        not isinstance(credentials, list)
        or len(credentials) != 1
        or not isinstance(credentials[0], dict)
        or not isinstance(credentials[0].get("credential"), str)
    ):
        raise WalletError("the credential response holds no single credential")
    issued: str = credentials[0]["credential"]
    return issued


# -- 5. checking what came back --------------------------------------------------------------


def issuer_keys(issuer: str, http: httpx.Client) -> dict[str, VerificationKey]:
    """The keys ``issuer`` publishes (SD-JWT VC §5: ``/.well-known/jwt-vc-issuer`` with the
    issuer's path appended), checked to be published for that very issuer."""
    document = _get_json(http, _well_known(issuer, "jwt-vc-issuer"), "the issuer's keys")
    if document.get("issuer") != issuer:
        raise WalletError("the JWT VC issuer metadata names another issuer")
    jwks = document.get("jwks")
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise WalletError("the JWT VC issuer metadata has no jwks (jwks_uri is not followed)")
    keys: dict[str, VerificationKey] = {}
    for jwk in jwks["keys"]:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not isinstance(kid, str) or not kid or kid in keys:
            raise WalletError("the issuer's JWKS has a key without a unique kid")
        try:
            keys[kid] = parse_public_jwk(jwk, kid=kid)
        except JWKError as exc:
            raise WalletError(f"the issuer's key {kid} is invalid: {exc}") from exc
    return keys


def issuer_iaca(issuer: str, http: httpx.Client) -> x509.Certificate:
    """The IACA ``issuer`` publishes for its mdocs (Thiqa's ``/mdoc/iaca.pem``)."""
    url = check_url(f"{issuer.rstrip('/')}/mdoc/iaca.pem", "the issuer's IACA")
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise WalletError(f"the issuer's IACA could not be fetched: {exc}") from exc
    if response.status_code != 200 or len(response.content) > 16 * 1024:
        raise WalletError("the issuer publishes no IACA certificate")
    try:
        return x509.load_pem_x509_certificate(response.content)
    except ValueError as exc:
        raise WalletError("the issuer's IACA is not a PEM certificate") from exc


def check_mdoc(
    credential: str, *, discovery: Discovery, key: SigningKey, http: httpx.Client
) -> None:
    """Issuer signature and chain to the issuer's IACA, docType, validity, every digest, and
    the device key: the key this wallet proved."""
    try:
        checked = check_issuer_signed(
            cbor_decode(b64url_decode(credential)),
            doctype=discovery.vct,
            anchors=[issuer_iaca(discovery.credential_issuer, http)],
            now=int(time.time()),
        )
    except (EncodingError, VerificationFailure) as exc:
        reason = exc.reason.value if isinstance(exc, VerificationFailure) else "not base64url"
        raise WalletError(f"the mdoc does not verify: {reason}") from exc
    if checked.failures:
        codes = ", ".join(f.reason.value for f in checked.failures)
        raise WalletError(f"the mdoc does not verify: {codes}")
    if checked.status_ref is None:
        raise WalletError(f"the mdoc names no status list ({Reason.INVALID_STATUS_REFERENCE})")
    own = key.key.public_key() if isinstance(key.key, ec.EllipticCurvePrivateKey) else None
    if own is None or checked.device_key.public_numbers() != own.public_numbers():
        raise WalletError("the mdoc is not bound to the key this wallet proved")


def check_credential(
    credential: str, *, discovery: Discovery, key: SigningKey, http: httpx.Client
) -> None:
    """Signature (the issuer's published keys), type, times, disclosures, and holder key."""
    if discovery.format == MDOC:
        check_mdoc(credential, discovery=discovery, key=key, http=http)
        return
    trusted = TrustedIssuer(
        identifier=discovery.credential_issuer,
        keys=issuer_keys(discovery.credential_issuer, http),
        types=frozenset({discovery.vct}),
    )
    inspection = inspect(
        credential,
        trusted={trusted.identifier: trusted},
        policy=Policy(accept_legacy_typ=False),
        expect=Expectations(),
        now=int(time.time()),
    )
    if inspection.failures:
        codes = ", ".join(f.reason.value for f in inspection.failures)
        raise WalletError(f"the credential does not verify: {codes}")
    cnf = credential_payload(credential).get("cnf")
    if not isinstance(cnf, dict) or cnf.get("jwk") != public_jwk(key.key):
        raise WalletError("the credential is not bound to the key this wallet proved")


def accept(
    text: str, *, wallet: Wallet, http: httpx.Client, pin: str | None = None
) -> StoredCredential:
    """Run the whole flow and keep the credential (and its new key) in the wallet file."""
    offer = read_offer(text, http)
    discovery = discover(offer, http)
    access_token = redeem(offer, discovery, http, pin)
    key = wallet.new_key()
    credential = request_credential(discovery, http, access_token, key)
    check_credential(credential, discovery=discovery, key=key, http=http)
    stored = wallet.add(
        credential, key, format=discovery.format, issuer=discovery.credential_issuer
    )
    wallet.save()
    return stored
