"""OpenID4VCI 1.0 (pre-authorized code flow): the documents Thiqa publishes and the checks it
makes on what a wallet sends, with no I/O.

* The Credential Offer, the Credential Issuer metadata and the OAuth authorization server
  metadata (RFC 8414) are built here from settings-derived values.
* :func:`check_proof` validates a key proof JWT (Appendix F.1): explicit ``typ``
  ``openid4vci-proof+jwt`` (RFC 8725 §3.11, so no other kind of JWT is accepted as a proof), an
  algorithm from the allow-list, exactly one key parameter and only ``jwk`` (``kid`` would need
  a DID resolver and ``x5c`` a PKI, neither of which Thiqa has), a public key that is a real
  point, the signature, ``aud``, a fresh ``iat`` and a ``nonce``. Whether that nonce is an
  unused ``c_nonce`` is the store's question, asked only after everything here holds.
* :func:`parse_credential_request` reads a Credential Request body.

Failures raise a :class:`CredentialRequestError` naming the spec's error code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote, urlsplit

from service.core import jws
from service.core.keys import (
    InvalidSignatureError,
    JWKError,
    VerificationKey,
    parse_public_jwk,
    public_jwk,
)
from service.core.reasons import VerificationFailure
from service.core.time_claims import TimeClaimFailure, TimeProblem, time_claim_failures

__all__ = [
    "CONFIGURATION_ID",
    "NONCE_PATTERN",
    "PRE_AUTHORIZED_GRANT",
    "PROOF_ALGORITHMS",
    "PROOF_TYP",
    "CredentialRequest",
    "CredentialRequestError",
    "Proof",
    "RequestProblem",
    "authorization_server_metadata",
    "check_proof",
    "credential_offer",
    "issuer_metadata",
    "offer_uri",
    "parse_credential_request",
    "well_known_path",
]

PRE_AUTHORIZED_GRANT: Final = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP: Final = "openid4vci-proof+jwt"
#: The one credential configuration Thiqa offers: its national identity SD-JWT VC.
CONFIGURATION_ID: Final = "thiqa_national_id"
#: Holder keys Thiqa binds credentials to, as the verifier checks their KB-JWTs.
PROOF_ALGORITHMS: Final = ("ES256", "EdDSA")
#: c_nonces are 24 bytes in base64url (expiry, randomness and MAC: see
#: :class:`service.store.offers.NonceStore`); anything else cannot be one of ours, and is
#: refused before it reaches a Redis key name.
NONCE_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{32}$")
OFFER_SCHEME: Final = "openid-credential-offer://"
#: Header parameters that name the proof's key; the spec allows exactly one of them.
_KEY_PARAMETERS: Final = ("jwk", "kid", "x5c", "trust_chain")


class RequestProblem(StrEnum):
    """What is wrong with a Credential Request, by the error code OpenID4VCI §8.3.1.2 gives it.
    ``service/errors.py`` has one class per member; the issuing service maps one to the other.
    """

    INVALID_CREDENTIAL_REQUEST = "invalid_credential_request"
    UNKNOWN_CREDENTIAL_CONFIGURATION = "unknown_credential_configuration"
    INVALID_ENCRYPTION_PARAMETERS = "invalid_encryption_parameters"
    INVALID_PROOF = "invalid_proof"


class CredentialRequestError(ValueError):
    """A Credential Request or key proof refused. ``description`` is fixed ASCII text (the
    spec restricts ``error_description`` to it) and never repeats what the wallet sent."""

    def __init__(self, error: RequestProblem, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


def _invalid_proof(description: str) -> CredentialRequestError:
    return CredentialRequestError(RequestProblem.INVALID_PROOF, description)


def well_known_path(name: str, identifier: str) -> str:
    """RFC 8414 §3 / OpenID4VCI §12.2.2: the well-known segment goes between the host and the
    identifier's path, so ``https://h/t`` has its metadata at ``/.well-known/NAME/t``."""
    return f"/.well-known/{name}" + urlsplit(identifier).path.rstrip("/")


def offer_uri(credential_offer_uri: str) -> str:
    """The by-reference offer a QR code or a link carries (§4.1.3)."""
    return f"{OFFER_SCHEME}?credential_offer_uri={quote(credential_offer_uri, safe='')}"


def credential_offer(
    *, issuer: str, pre_authorized_code: str, tx_code_length: int | None
) -> dict[str, Any]:
    """The Credential Offer object (§4.1.1). ``tx_code_length`` None: no transaction code."""
    grant: dict[str, Any] = {"pre-authorized_code": pre_authorized_code}
    if tx_code_length is not None:
        grant["tx_code"] = {
            "input_mode": "numeric",
            "length": tx_code_length,
            "description": "The code the issuing office gave you with this offer.",
        }
    return {
        "credential_issuer": issuer,
        "credential_configuration_ids": [CONFIGURATION_ID],
        "grants": {PRE_AUTHORIZED_GRANT: grant},
    }


def _display(type_metadata: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "name": item["name"],
            "locale": item["locale"],
            **({"description": item["description"]} if "description" in item else {}),
        }
        for item in type_metadata.get("display", [])
    ]


def _claims(type_metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    # OpenID4VCI names a claim's label ``name``; SD-JWT VC Type Metadata calls it ``label``.
    return [
        {
            "path": list(claim["path"]),
            **({"mandatory": True} if claim.get("mandatory") else {}),
            "display": [
                {"name": d["label"], "locale": d["locale"]} for d in claim.get("display", [])
            ],
        }
        for claim in type_metadata.get("claims", [])
    ]


def issuer_metadata(
    *,
    issuer: str,
    vct: str,
    signing_algs: Sequence[str],
    type_metadata: Mapping[str, Any],
) -> dict[str, Any]:
    """Credential Issuer metadata (§12.2.4) for the one configuration Thiqa offers.

    Display names and claim labels in Arabic, French and English come from the type's own
    metadata, so the wallet shows the same words a verifier reading the ``vct`` would.
    """
    display = _display(type_metadata)
    return {
        "credential_issuer": issuer,
        "credential_endpoint": f"{issuer}/credential",
        "nonce_endpoint": f"{issuer}/nonce",
        "display": [{"name": "Thiqa", "locale": "en"}, {"name": "ثقة", "locale": "ar"}],
        "credential_configurations_supported": {
            CONFIGURATION_ID: {
                "format": "dc+sd-jwt",
                "vct": vct,
                "scope": CONFIGURATION_ID,
                "cryptographic_binding_methods_supported": ["jwk"],
                "credential_signing_alg_values_supported": sorted(set(signing_algs)),
                "proof_types_supported": {
                    "jwt": {"proof_signing_alg_values_supported": list(PROOF_ALGORITHMS)},
                },
                "credential_metadata": {"display": display, "claims": _claims(type_metadata)},
            },
        },
    }


def authorization_server_metadata(*, issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata of the authorization server, which is the issuer itself.

    Only the pre-authorized code grant exists, so ``authorization_endpoint`` and
    ``response_types_supported`` are left out, as §12.3 allows.
    """
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


@dataclass(frozen=True, slots=True)
class CredentialRequest:
    configuration_id: str
    proof: str


_INVALID: Final = RequestProblem.INVALID_CREDENTIAL_REQUEST


def parse_credential_request(body: Any) -> CredentialRequest:
    """Read a Credential Request (§8.2). One proof, of type ``jwt``: Thiqa publishes no
    ``batch_credential_issuance``, so a request for several credentials is refused rather than
    silently answered with one."""
    if not isinstance(body, dict):
        raise CredentialRequestError(_INVALID, "The body must be a JSON object.")
    if "credential_identifier" in body:
        raise CredentialRequestError(
            _INVALID,
            "credential_identifier is not used: no authorization_details were granted.",
        )
    if "credential_response_encryption" in body:
        raise CredentialRequestError(
            RequestProblem.INVALID_ENCRYPTION_PARAMETERS,
            "This issuer does not encrypt credential responses.",
        )
    configuration_id = body.get("credential_configuration_id")
    if not isinstance(configuration_id, str) or not configuration_id:
        raise CredentialRequestError(_INVALID, "credential_configuration_id is required.")
    if configuration_id != CONFIGURATION_ID:
        raise CredentialRequestError(
            RequestProblem.UNKNOWN_CREDENTIAL_CONFIGURATION,
            "This issuer offers thiqa_national_id only.",
        )
    proofs = body.get("proofs")
    if proofs is None:
        raise _invalid_proof("proofs is required (a key proof of type jwt).")
    if not isinstance(proofs, dict) or len(proofs) != 1 or "jwt" not in proofs:
        raise _invalid_proof("proofs must hold exactly one proof type, jwt.")
    jwts = proofs["jwt"]
    if not isinstance(jwts, list) or not jwts or not all(isinstance(p, str) for p in jwts):
        raise _invalid_proof("proofs.jwt must be a non-empty array of JWTs.")
    if len(jwts) != 1:
        raise _invalid_proof("This issuer issues one credential per request: send one proof.")
    return CredentialRequest(configuration_id=configuration_id, proof=jwts[0])


@dataclass(frozen=True, slots=True)
class Proof:
    """A key proof that holds: the key to bind the credential to, and the nonce it carries."""

    key: VerificationKey
    jwk: dict[str, str]
    nonce: str


#: What ``invalid_proof`` says for each time failure, the first one found.
_PROOF_TIME_MESSAGES: Final = {
    TimeClaimFailure("iat", TimeProblem.MALFORMED): "The proof has no numeric iat.",
    TimeClaimFailure("iat", TimeProblem.MISSING): "The proof has no numeric iat.",
    TimeClaimFailure("iat", TimeProblem.NOT_YET_VALID): "The proof's iat is in the future.",
    TimeClaimFailure("iat", TimeProblem.TOO_OLD): "The proof is too old.",
    TimeClaimFailure("nbf", TimeProblem.MALFORMED): "The proof's nbf is not a NumericDate.",
    TimeClaimFailure("nbf", TimeProblem.NOT_YET_VALID): "The proof is not valid yet.",
    TimeClaimFailure("exp", TimeProblem.MALFORMED): "The proof's exp is not a NumericDate.",
    TimeClaimFailure("exp", TimeProblem.EXPIRED): "The proof has expired.",
}


def check_proof(
    token: str,
    *,
    audience: str,
    now: int,
    clock_skew: int,
    max_age: int,
    algorithms: Sequence[str] = PROOF_ALGORITHMS,
) -> Proof:
    """Validate a ``jwt`` key proof; raise ``invalid_proof`` for every failure but the nonce's
    value, which the caller checks against the store (``invalid_nonce``).

    ``max_age`` bounds how old ``iat`` may be; the caller passes the c_nonce lifetime, since a
    proof carrying a live nonce cannot honestly have been made before the nonce existed.
    """
    try:
        parsed = jws.parse(token, typ=frozenset({PROOF_TYP}))
    except VerificationFailure as failure:
        raise _invalid_proof(
            f"The proof is not an {PROOF_TYP} JWT ({failure.reason.value})."
        ) from failure
    if parsed.alg not in algorithms:
        raise _invalid_proof("The proof's algorithm is not allowed.")
    header = parsed.header
    named = [name for name in _KEY_PARAMETERS if name in header]
    if len(named) != 1:
        # Two key parameters let a proof name an honest key and carry another one.
        raise _invalid_proof("The proof header must carry exactly one of jwk, kid, x5c.")
    if named != ["jwk"]:
        raise _invalid_proof("Only jwk proofs are supported (no kid, x5c or trust_chain).")
    if "key_attestation" in header:
        raise _invalid_proof("Key attestations are not supported.")
    try:
        key = parse_public_jwk(header["jwk"])
    except JWKError as exc:
        raise _invalid_proof("The proof's jwk is not a valid public key.") from exc
    if key.alg != parsed.alg:
        raise _invalid_proof("The proof's algorithm does not match its key.")
    try:
        key.verify(parsed.signature, parsed.signing_input)
    except InvalidSignatureError:
        raise _invalid_proof("The proof's signature does not verify with its jwk.") from None

    claims = parsed.payload
    if claims.get("aud") != audience:
        raise _invalid_proof("The proof's aud is not this credential issuer.")
    times = time_claim_failures(
        claims, now=now, leeway=clock_skew, required=("iat",), max_age=max_age
    )
    if times:
        raise _invalid_proof(_PROOF_TIME_MESSAGES[times[0]])
    nonce = claims.get("nonce")
    if nonce is None:
        raise _invalid_proof("The proof has no nonce: get one from the nonce endpoint.")
    if not isinstance(nonce, str):
        raise _invalid_proof("The proof's nonce is not a string.")
    # ``iss`` is left unread: it names a client_id, and a pre-authorized code is redeemed
    # anonymously here, so there is no client it could be checked against.
    return Proof(key=key, jwk=public_jwk(key.key), nonce=nonce)
