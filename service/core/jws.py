"""Compact JWS (RFC 7515), read strictly and typed explicitly (RFC 8725 §3.11).

Thiqa parses JWS itself rather than through PyJWT because PyJWT accepts padded and
standard-alphabet base64, keeps the last of duplicated JSON members and leaves ``typ``, ``crit``
and size unchecked; each of those is a way to make two verifiers disagree about one token.

Parsing never reads key material named by the token: ``jwk``, ``jku``, ``x5u`` and ``x5c`` in a
header are ignored, and the key is always chosen by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.core.encoding import (
    EncodingError,
    b64url_decode,
    b64url_encode,
    json_dumps,
    json_loads,
)
from service.core.keys import ALGORITHMS, SigningKey
from service.core.reasons import Reason, VerificationFailure

__all__ = ["Jws", "decode_compact", "encode", "normalise_typ", "parse"]

MAX_KID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Jws:
    """A parsed but not yet verified compact JWS."""

    header: Mapping[str, Any]
    payload: Mapping[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        alg: str = self.header["alg"]  # parse() admits only a string from ALGORITHMS
        return alg

    @property
    def kid(self) -> str | None:
        return self.header.get("kid")


def normalise_typ(value: str) -> str:
    """RFC 7515 §4.1.9: media types compare case-insensitively, ``application/`` optional."""
    value = value.lower()
    return value.removeprefix("application/")


def parse(token: str, *, typ: frozenset[str], failure: Reason = Reason.MALFORMED) -> Jws:
    """Split, decode and check the header of a compact JWS whose ``typ`` must be in ``typ``.

    ``failure`` is the code for a token that is not a JWS at all, so a bad key-binding JWT is
    reported as ``invalid_key_binding`` rather than as a malformed credential.
    """
    header, payload_bytes, signing_input, signature = decode_compact(token, failure=failure)
    try:
        payload = json_loads(payload_bytes)
    except EncodingError as exc:
        raise VerificationFailure(failure, str(exc)) from exc
    if not isinstance(payload, dict):
        raise VerificationFailure(failure, "payload must be a JSON object")

    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise VerificationFailure(Reason.UNSUPPORTED_ALGORITHM)
    found_typ = header.get("typ")
    if not isinstance(found_typ, str) or normalise_typ(found_typ) not in typ:
        raise VerificationFailure(Reason.WRONG_TYPE)
    # No extension is understood, so any critical one must be refused (RFC 7515 §4.1.11);
    # "b64": false (RFC 7797) would change what the signature covers.
    if "crit" in header or "b64" in header:
        raise VerificationFailure(failure, "unsupported header parameter")
    if not signature:
        raise VerificationFailure(failure, "no signature")
    kid = header.get("kid")
    if kid is not None and (
        not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH or not kid.isprintable()
    ):
        raise VerificationFailure(failure, "invalid kid")
    return Jws(header=header, payload=payload, signing_input=signing_input, signature=signature)


def decode_compact(
    token: str, *, failure: Reason = Reason.MALFORMED
) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """The first half of :func:`parse`: split a compact JWS and decode its parts strictly.

    Returns the header (a JSON object), the payload bytes, the signing input and the
    signature bytes. It checks no header member and does not read the payload as JSON, so
    only :func:`parse` may stand between a token and a verdict; this half exists on its own
    so that signature test vectors with non-JSON payloads go through the same decoding.
    """
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise VerificationFailure(failure, "not a compact JWS")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = json_loads(b64url_decode(header_b64))
        payload = b64url_decode(payload_b64)
        signature = b64url_decode(signature_b64)
    except EncodingError as exc:
        raise VerificationFailure(failure, str(exc)) from exc
    if not isinstance(header, dict):
        raise VerificationFailure(failure, "header must be a JSON object")
    return header, payload, f"{header_b64}.{payload_b64}".encode("ascii"), signature


def encode(
    payload: Mapping[str, Any],
    key: SigningKey,
    *,
    typ: str,
    include_kid: bool = True,
    extra_header: Mapping[str, Any] | None = None,
) -> str:
    header: dict[str, Any] = {"alg": key.alg, "typ": typ}
    if include_kid:
        header["kid"] = key.kid
    if key.x5c:
        header["x5c"] = list(key.x5c)
    if extra_header:
        header.update(extra_header)
    signing_input = (
        b64url_encode(json_dumps(header).encode("utf-8"))
        + "."
        + b64url_encode(json_dumps(payload).encode("utf-8"))
    )
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"
