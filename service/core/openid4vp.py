"""OpenID for Verifiable Presentations 1.0, the verifier's side: requests, DCQL, answers.

Thiqa asks a citizen's wallet for an SD-JWT VC on behalf of a relying party (a government
app) and tells the relying party what came back. This module is the protocol without I/O:

* the Authorization Request, served by reference (``request_uri``) as an *unsecured* Request
  Object. Thiqa identifies itself with the ``redirect_uri`` Client Identifier Prefix, the one
  prefix that needs no certificate, DID or attestation: ``client_id`` is
  ``redirect_uri:<response_uri>``. OpenID4VP 1.0 (Client Identifier Prefixes) says requests
  under this prefix cannot be signed (the wallet has no key to check), so the object is a JWT
  with ``alg: none``
  (RFC 7519 §6) and ``typ: oauth-authz-req+jwt``. What protects the citizen is that the
  answer can only go to the ``response_uri`` that *is* the client id, and that the wallet
  binds its presentation to that client id (KB-JWT ``aud``) and to the request's ``nonce``;
* a DCQL subset: one Credential Query (id ``credential``, format ``dc+sd-jwt``,
  ``meta.vct_values`` of one type) whose claims are paths of object member names. Array
  selectors (``null``, indices) are refused: undisclosed array elements vanish from what a
  verifier sees (RFC 9901 §7.3), so an index the wallet means and the index Thiqa would read
  need not be the same element;
* reading the ``direct_post`` answer: ``vp_token`` is a JSON object keyed by the Credential
  Query id, each value an *array* of presentations (1.0 Final, Response Parameters; earlier
  drafts sent a bare string, which is refused);
* judging a verified presentation against the request, and data minimisation: the relying
  party receives the requested claims and nothing else, whatever the wallet disclosed.
"""

from __future__ import annotations

import copy
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

from service.core import jws
from service.core.display_text import spoofs
from service.core.encoding import EncodingError, b64url_encode, json_dumps, json_loads
from service.core.jwe import ENCRYPTION_VALUES, public_encryption_jwk
from service.core.keys import ALGORITHMS, SigningKey
from service.core.reasons import Failure, Reason
from service.core.status_list import StatusValue
from service.core.verify import ENVELOPE_CLAIMS, Verdict

__all__ = [
    "CLIENT_ID_PREFIX",
    "CREDENTIAL_QUERY_ID",
    "DC_API_MODES",
    "DC_API_PROTOCOL_SIGNED",
    "DC_API_PROTOCOL_UNSIGNED",
    "ENCRYPTED_MODES",
    "FORMAT",
    "PREFIXES",
    "REDIRECT_URI",
    "REQUEST_OBJECT_MEDIA_TYPE",
    "REQUEST_OBJECT_TYP",
    "RESPONSE_MODES",
    "SIGNED_PREFIXES",
    "X509_HASH",
    "X509_SAN_DNS",
    "ClaimPath",
    "Outcome",
    "PresentationRequest",
    "RequestError",
    "VpTokenError",
    "check_paths",
    "check_purpose",
    "client_id_for",
    "dcql_query",
    "dotted",
    "judge",
    "minimise",
    "new_secret",
    "origin_audience",
    "read_vp_token",
    "select",
    "unsecured_jwt",
    "wallet_error_code",
    "wallet_uri",
]

FORMAT: Final = "dc+sd-jwt"
CREDENTIAL_QUERY_ID: Final = "credential"
CLIENT_ID_PREFIX: Final = "redirect_uri:"
REQUEST_OBJECT_TYP: Final = "oauth-authz-req+jwt"
REQUEST_OBJECT_MEDIA_TYPE: Final = "application/oauth-authz-req+jwt"
#: ``aud`` of a Request Object when the wallet's metadata is static (1.0, "aud of a Request
#: Object").
SELF_ISSUED_AUDIENCE: Final = "https://self-issued.me/v2"
#: What Thiqa verifies, for issuer and holder alike, as the ``alg`` values tokens carry.
#: 1.0 (SD-JWT VC metadata) asks for fully-specified names; ``EdDSA`` is listed as is,
#: because it is the identifier Ed25519 tokens carry today and the one Thiqa checks.
SUPPORTED_ALGS: Final = tuple(sorted(ALGORITHMS))

MAX_PATHS: Final = 32
MAX_PATH_DEPTH: Final = 8
MAX_NAME_LENGTH: Final = 128
MAX_PURPOSE_LENGTH: Final = 300

ClaimPath = tuple[str, ...]

_SD_RESERVED: Final = frozenset({"_sd", "..."})
_OAUTH_ERROR: Final = re.compile(r"^[a-z_]{1,64}$")
_STATUS_NAMES: Final = {
    StatusValue.VALID: "valid",
    StatusValue.SUSPENDED: "suspended",
    StatusValue.INVALID: "revoked",
}


class RequestError(ValueError):
    """A relying party's request that cannot be made into an Authorization Request. The
    message says what is wrong and never repeats the offending text."""


class VpTokenError(ValueError):
    """A ``vp_token`` that does not answer the request's DCQL query in shape."""


def new_secret() -> str:
    """128 random bits as base64url: nonce, state and request id (1.0: ``nonce``, ``state``,
    Preventing Replay)."""
    return secrets.token_urlsafe(16)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def check_purpose(text: str) -> str:
    """The purpose shown to the citizen: NFC, 1 to 300 characters of any script, one line."""
    text = _nfc(text).strip()
    if not 1 <= len(text) <= MAX_PURPOSE_LENGTH:
        raise RequestError(f"purpose must be 1 to {MAX_PURPOSE_LENGTH} characters")
    # The same rule as claims (service.core.display_text): an override can make a purpose
    # read backwards on the citizen's screen ("pay 001" shown as "100 yap").
    if spoofs(text):
        raise RequestError(
            "purpose may not contain control, line-break or bidirectional-override characters"
        )
    return text


def check_paths(paths: Iterable[Sequence[Any]]) -> tuple[ClaimPath, ...]:
    """Claims path pointers of member names, NFC, no duplicates, no envelope claim."""
    checked: list[ClaimPath] = []
    for i, raw in enumerate(paths):
        where = f"claims[{i}]"
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
            raise RequestError(f"{where} must be an array of claim names")
        if not 1 <= len(raw) <= MAX_PATH_DEPTH:
            raise RequestError(f"{where} must have 1 to {MAX_PATH_DEPTH} components")
        path: list[str] = []
        for part in raw:
            if not isinstance(part, str):
                raise RequestError(
                    f"{where}: only claim names are supported, not array "
                    "selectors (null or an index)"
                )
            name = _nfc(part)
            if (
                not 1 <= len(name) <= MAX_NAME_LENGTH
                or name in _SD_RESERVED
                or any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
            ):
                raise RequestError(f"{where} holds a name that no claim can have")
            path.append(name)
        # A claim about the credential, never the citizen: asking for one is a mistake worth
        # reporting at once.
        if path[0] in ENVELOPE_CLAIMS:
            raise RequestError(
                f"{where} names a claim about the credential, reported in every verdict anyway"
            )
        if tuple(path) in checked:
            raise RequestError(f"{where} repeats an earlier path")
        checked.append(tuple(path))
        if len(checked) > MAX_PATHS:
            raise RequestError(f"at most {MAX_PATHS} claims may be requested")
    return tuple(checked)


def dotted(path: ClaimPath) -> str:
    return ".".join(path)


def client_id_for(response_uri: str) -> str:
    return CLIENT_ID_PREFIX + response_uri


def dcql_query(
    vct: str, paths: Sequence[ClaimPath], trusted_authorities: Sequence[str] = ()
) -> dict[str, Any]:
    query: dict[str, Any] = {
        "id": CREDENTIAL_QUERY_ID,
        "format": FORMAT,
        "meta": {"vct_values": [vct]},
    }
    if trusted_authorities:
        query["trusted_authorities"] = [{"type": "aki", "values": list(trusted_authorities)}]
    if paths:
        # Without "claims" a wallet discloses nothing selectively disclosable (1.0, Selecting
        # Claims).
        query["claims"] = [{"path": list(path)} for path in paths]
    return {"credentials": [query]}


#: Client Identifier Prefixes Thiqa can use. ``x509_hash`` is HAIP 1.0's; both X.509 ones
#: need a signed Request Object with the access certificate in ``x5c``.
X509_HASH: Final = "x509_hash"
X509_SAN_DNS: Final = "x509_san_dns"
REDIRECT_URI: Final = "redirect_uri"
PREFIXES: Final = (X509_HASH, X509_SAN_DNS, REDIRECT_URI)
SIGNED_PREFIXES: Final = frozenset({X509_HASH, X509_SAN_DNS})
#: Response modes: ``.jwt`` ones are encrypted to the request's ephemeral key; ``dc_api``
#: ones answer through the browser's Digital Credentials API (OpenID4VP 1.0 Appendix A).
RESPONSE_MODES: Final = ("direct_post.jwt", "direct_post", "dc_api.jwt", "dc_api")
ENCRYPTED_MODES: Final = frozenset({"direct_post.jwt", "dc_api.jwt"})
DC_API_MODES: Final = frozenset({"dc_api.jwt", "dc_api"})
#: Thiqa's DC API protocol identifiers (Appendix A.1).
DC_API_PROTOCOL_SIGNED: Final = "openid4vp-v1-signed"
DC_API_PROTOCOL_UNSIGNED: Final = "openid4vp-v1-unsigned"
MAX_TRUSTED_AUTHORITIES: Final = 16
MAX_EXPECTED_ORIGINS: Final = 8


def origin_audience(origin: str) -> str:
    """The KB-JWT ``aud`` of an answer through the DC API (OpenID4VP 1.0 Appendix A.4)."""
    return "origin:" + origin


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationRequest:
    """One Authorization Request; everything the wallet and the response endpoint need."""

    request_id: str
    response_uri: str
    nonce: str
    state: str
    vct: str
    paths: tuple[ClaimPath, ...]
    purpose: str
    client_name: str
    #: Milliseconds: a request may live one second, and a whole-second clock would cut that
    #: short by up to a second.
    issued_ms: int
    expires_ms: int
    #: ``x509_hash:<hash>``, ``x509_san_dns:<host>``; empty: ``redirect_uri:<response_uri>``.
    signed_client_id: str = ""
    response_mode: str = "direct_post"
    #: Served from ``request_uri`` (signed, or nothing but a link) or passed whole in the
    #: wallet's URL (``redirect_uri`` requests are only ever this).
    by_reference: bool = True
    request_uri_method: str = "get"
    #: The ephemeral private JWK of an encrypted response mode (never published).
    encryption_key: Mapping[str, str] | None = None
    #: Same-device flow: where the wallet sends the citizen back, with a ``response_code``.
    redirect_uri: str | None = None
    expected_origins: tuple[str, ...] = ()
    #: DCQL ``trusted_authorities`` of type ``aki``: the anchors the relying party accepts.
    trusted_authorities: tuple[str, ...] = ()

    @property
    def client_id(self) -> str:
        return self.signed_client_id or client_id_for(self.response_uri)

    @property
    def prefix(self) -> str:
        return self.client_id.split(":", 1)[0]

    @property
    def signed(self) -> bool:
        return self.prefix in SIGNED_PREFIXES

    @property
    def encrypted(self) -> bool:
        return self.response_mode in ENCRYPTED_MODES

    @property
    def dc_api(self) -> bool:
        return self.response_mode in DC_API_MODES

    @property
    def issued_at(self) -> int:
        return self.issued_ms // 1000

    @property
    def expires_at(self) -> int:
        return -(-self.expires_ms // 1000)  # rounded up: never earlier than the truth

    def client_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "vp_formats_supported": {
                FORMAT: {
                    "sd-jwt_alg_values": list(SUPPORTED_ALGS),
                    "kb-jwt_alg_values": list(SUPPORTED_ALGS),
                }
            },
            # RFC 7591 client_name, and Thiqa's own "purpose": wallets that know neither
            # ignore them (1.0, New Parameters: client_metadata); Thiqa's wallet shows
            # both before consent.
            "client_name": self.client_name,
            "purpose": self.purpose,
        }
        if self.encryption_key is not None:
            # 1.0 §8.3: the key to encrypt to, and the content encryptions accepted.
            metadata["jwks"] = {"keys": [public_encryption_jwk(self.encryption_key)]}
            metadata["encrypted_response_enc_values_supported"] = list(ENCRYPTION_VALUES)
        return metadata

    def parameters(self, *, wallet_nonce: str | None = None) -> dict[str, Any]:
        """The Authorization Request parameters (1.0: Authorization Request), as the Request
        Object's claims; ``wallet_nonce`` echoes a ``request_uri_method=post`` fetch."""
        parameters: dict[str, Any] = {
            "response_type": "vp_token",
            "response_mode": self.response_mode,
            "client_id": self.client_id,
            "nonce": self.nonce,
            "dcql_query": dcql_query(self.vct, self.paths, self.trusted_authorities),
            "client_metadata": self.client_metadata(),
        }
        if self.dc_api:
            # Appendix A: the browser carries the answer back; the origin binds it.
            if self.signed:
                parameters["expected_origins"] = list(self.expected_origins)
            else:
                del parameters["client_id"]  # an unsigned DC API request has none (A.2)
        else:
            parameters["response_uri"] = self.response_uri
            parameters["state"] = self.state
        if wallet_nonce is not None:
            parameters["wallet_nonce"] = wallet_nonce
        if self.signed or self.by_reference:
            parameters.update(aud=SELF_ISSUED_AUDIENCE, iat=self.issued_at, exp=self.expires_at)
        return parameters

    def request_object(self, signer: SigningKey | None = None, **kwargs: Any) -> str:
        """The Request Object: a JWS by the access certificate's key (``x5c`` in its header)
        for the X.509 prefixes, else an unsecured JWT (``redirect_uri`` by value only)."""
        if self.signed:
            if signer is None or not signer.x5c:
                raise RequestError("a signed request needs the access certificate")
            return jws.encode(
                self.parameters(**kwargs), signer, typ=REQUEST_OBJECT_TYP, include_kid=False
            )
        return unsecured_jwt(self.parameters(**kwargs), typ=REQUEST_OBJECT_TYP)


def unsecured_jwt(claims: Mapping[str, Any], *, typ: str) -> str:
    """An Unsecured JWT (RFC 7519 §6.1): ``alg: none`` and an empty signature."""
    header = {"alg": "none", "typ": typ}

    def encode(value: Mapping[str, Any]) -> str:
        return b64url_encode(json_dumps(value).encode("utf-8"))

    return f"{encode(header)}.{encode(dict(claims))}."


def wallet_uri(
    client_id: str,
    request_uri: str | None = None,
    *,
    request_uri_method: str = "get",
    request: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> str:
    """What the QR code holds: the wallet's custom scheme with the request by reference
    (``request_uri``), signed by value (``request``), or as plain parameters (unsigned by
    value, the only way a ``redirect_uri`` request goes)."""
    query: dict[str, str] = {"client_id": client_id}
    if request_uri is not None:
        query["request_uri"] = request_uri
        if request_uri_method != "get":
            query["request_uri_method"] = request_uri_method
    elif request is not None:
        query["request"] = request
    elif parameters is not None:
        query.update(
            {
                k: v if isinstance(v, str) else json_dumps(v)
                for k, v in parameters.items()
                if k not in ("aud", "iat", "exp")
            }
        )
    return "openid4vp://?" + urlencode(query, quote_via=quote)


def read_vp_token(text: str) -> str:
    """The one presentation a ``vp_token`` holds for Thiqa's one Credential Query."""
    try:
        token = json_loads(text)
    except EncodingError:
        raise VpTokenError("vp_token is not JSON") from None
    if not isinstance(token, dict):
        raise VpTokenError("vp_token is not a JSON object keyed by credential query id")
    if set(token) != {CREDENTIAL_QUERY_ID}:
        raise VpTokenError(f"vp_token must answer exactly the query '{CREDENTIAL_QUERY_ID}'")
    value = token[CREDENTIAL_QUERY_ID]
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], str):
        raise VpTokenError("the query's value must be an array of exactly one presentation")
    return value[0]


def select(claims: Mapping[str, Any], path: ClaimPath) -> tuple[bool, Any]:
    """Process a claims path pointer of member names (1.0, Claims Path Pointer): (found, value)."""
    value: Any = claims
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


def minimise(claims: Mapping[str, Any], paths: Sequence[ClaimPath]) -> dict[str, Any]:
    """Only the requested claims, each at its place; whatever else was disclosed is dropped.

    A path to an object keeps the object as disclosed (``["place_of_birth"]`` asks for all of
    it, 1.0 Claims Path Pointer examples); a path into one keeps only that member.
    """
    kept: dict[str, Any] = {}
    for path in paths:
        found, value = select(claims, path)
        if not found:
            continue
        target = kept
        for name in path[:-1]:
            child = target.get(name)
            if not isinstance(child, dict):
                child = target[name] = {}
            target = child
        target[path[-1]] = copy.deepcopy(value)
    return kept


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The relying party's answer: a verdict cut down to what it asked for."""

    failures: tuple[Failure, ...]
    credential_status: str | None = None
    issuer: str | None = None
    vct: str | None = None
    claims: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return not self.failures

    def body(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "credential_status": self.credential_status,
            "issuer": self.issuer,
            "vct": self.vct,
            "claims": self.claims,
            "errors": [{"code": f.reason.value, "message": f.message} for f in self.failures],
        }

    @classmethod
    def refused(cls, reason: Reason, detail: str | None = None) -> Outcome:
        return cls(failures=(Failure.of(reason, detail),))


def judge(
    verdict: Verdict,
    *,
    vct: str,
    paths: Sequence[ClaimPath],
    trusted_authorities: Sequence[str] = (),
) -> Outcome:
    """Hold a verified presentation to the request: its type, its trust anchor when the
    relying party restricted them, and every requested claim disclosed. The claims kept are
    exactly the requested ones."""
    failures = list(verdict.failures)
    if verdict.vct is not None and verdict.vct != vct:
        failures.append(Failure.of(Reason.VCT_MISMATCH))
    if (
        trusted_authorities
        and verdict.issuer is not None
        and verdict.anchor_aki not in trusted_authorities
    ):
        # Signed by a key no certificate of the accepted authorities vouches for.
        failures.append(Failure.of(Reason.UNTRUSTED_CERTIFICATE, "not a requested authority"))
    claims = None
    if verdict.claims is not None:
        missing = [dotted(p) for p in paths if not select(verdict.claims, p)[0]]
        if missing:
            # Claim names come from the request, not from the citizen: safe to repeat.
            failures.append(Failure.of(Reason.MISSING_CLAIMS, ", ".join(missing)))
        elif not failures:
            claims = minimise(verdict.claims, paths)
    status = verdict.credential_status
    return Outcome(
        failures=tuple(failures),
        credential_status=_STATUS_NAMES.get(status) if status is not None else None,
        issuer=verdict.issuer,
        vct=verdict.vct,
        claims=claims,
    )


def wallet_error_code(value: str) -> str | None:
    """An OAuth error code a wallet sent instead of a presentation, if it looks like one.
    Anything else (free text) is not repeated anywhere."""
    return value if _OAUTH_ERROR.fullmatch(value) else None
