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

from service.core.encoding import EncodingError, b64url_encode, json_dumps, json_loads
from service.core.keys import ALGORITHMS
from service.core.reasons import Failure, Reason
from service.core.status_list import StatusValue
from service.core.verify import ENVELOPE_CLAIMS, Verdict

__all__ = [
    "CLIENT_ID_PREFIX",
    "CREDENTIAL_QUERY_ID",
    "FORMAT",
    "REQUEST_OBJECT_MEDIA_TYPE",
    "REQUEST_OBJECT_TYP",
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
# Embedding, override and isolate controls can make a purpose read backwards on the
# citizen's screen ("pay 001" shown as "100 yap"). LRM/RLM/ALM stay: Arabic text needs them.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
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
    for char in text:
        # Zl/Zp: U+2028 and U+2029 break lines as surely as "\n" does.
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI_CONTROLS:
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


def dcql_query(vct: str, paths: Sequence[ClaimPath]) -> dict[str, Any]:
    query: dict[str, Any] = {
        "id": CREDENTIAL_QUERY_ID,
        "format": FORMAT,
        "meta": {"vct_values": [vct]},
    }
    if paths:
        # Without "claims" a wallet discloses nothing selectively disclosable (1.0, Selecting
        # Claims).
        query["claims"] = [{"path": list(path)} for path in paths]
    return {"credentials": [query]}


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

    @property
    def client_id(self) -> str:
        return client_id_for(self.response_uri)

    @property
    def issued_at(self) -> int:
        return self.issued_ms // 1000

    @property
    def expires_at(self) -> int:
        return -(-self.expires_ms // 1000)  # rounded up: never earlier than the truth

    def parameters(self) -> dict[str, Any]:
        """The Authorization Request parameters (1.0: Authorization Request, direct_post), as
        the Request Object's claims."""
        return {
            "response_type": "vp_token",
            "response_mode": "direct_post",
            "client_id": self.client_id,
            "response_uri": self.response_uri,
            "nonce": self.nonce,
            "state": self.state,
            "dcql_query": dcql_query(self.vct, self.paths),
            "client_metadata": {
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
            },
            "aud": SELF_ISSUED_AUDIENCE,
            "iat": self.issued_at,
            "exp": self.expires_at,
        }

    def request_object(self) -> str:
        return unsecured_jwt(self.parameters(), typ=REQUEST_OBJECT_TYP)


def unsecured_jwt(claims: Mapping[str, Any], *, typ: str) -> str:
    """An Unsecured JWT (RFC 7519 §6.1): ``alg: none`` and an empty signature."""
    header = {"alg": "none", "typ": typ}

    def encode(value: Mapping[str, Any]) -> str:
        return b64url_encode(json_dumps(value).encode("utf-8"))

    return f"{encode(header)}.{encode(dict(claims))}."


def wallet_uri(client_id: str, request_uri: str) -> str:
    """What the QR code holds: the wallet's custom scheme with the request by reference."""
    return "openid4vp://?" + urlencode(
        {"client_id": client_id, "request_uri": request_uri}, quote_via=quote
    )


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


def judge(verdict: Verdict, *, vct: str, paths: Sequence[ClaimPath]) -> Outcome:
    """Hold a verified presentation to the request: its type, and every requested claim
    disclosed. The claims kept are exactly the requested ones."""
    failures = list(verdict.failures)
    if verdict.vct is not None and verdict.vct != vct:
        failures.append(Failure.of(Reason.VCT_MISMATCH))
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
