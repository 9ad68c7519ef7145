"""Encrypted OpenID4VP responses (``direct_post.jwt``, ``dc_api.jwt``): compact JWE with
ECDH-ES on P-256 and AES-GCM, as HAIP 1.0 requires.

Each presentation request gets a fresh ephemeral key (:func:`new_encryption_key`), published
in its ``client_metadata``; the wallet encrypts its Authorization Response to it. Decryption
is joserfc's (a kept JOSE library: Concat KDF, key agreement and AES-GCM are not written
here). What this module adds is the policy around it, checked on the protected header
*before* any key agreement runs: a size cap, exactly ``alg: ECDH-ES``, ``enc`` from the
request's list, and the request's ``kid`` when the header names one. Every failure is an
:class:`EncryptionError` with a stable code:

    response_too_large      over the size cap, refused unread
    malformed_response      not a compact JWE, or a plaintext that is not a JSON object
    unsupported_encryption  another ``alg`` or ``enc`` than the request offered
    decryption_failed       made for another key, or a tag that does not verify
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from service.core.encoding import EncodingError, b64url_decode, json_dumps, json_loads
from service.core.keys import jwk_thumbprint

__all__ = [
    "ENCRYPTION_ALG",
    "ENCRYPTION_VALUES",
    "MAX_RESPONSE_BYTES",
    "EncryptionError",
    "decrypt_response",
    "encrypt_response",
    "new_encryption_key",
    "public_encryption_jwk",
]

ENCRYPTION_ALG: Final = "ECDH-ES"
#: HAIP 1.0 §5: verifiers accept both.
ENCRYPTION_VALUES: Final = ("A128GCM", "A256GCM")
#: A JWE of one SD-JWT VC presentation (16 KiB at most) with base64url overhead.
MAX_RESPONSE_BYTES: Final = 48 * 1024
_MAX_HEADER_BYTES: Final = 2048


class EncryptionError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def new_encryption_key() -> dict[str, str]:
    """A fresh P-256 key for one request, as a private JWK with its ``kid`` (thumbprint)."""
    key = ECKey.generate_key("P-256", private=True)
    private: dict[str, str] = {k: str(v) for k, v in key.as_dict(private=True).items()}
    private["kid"] = jwk_thumbprint(private)
    return private


def public_encryption_jwk(private: Mapping[str, str]) -> dict[str, str]:
    """What ``client_metadata.jwks`` publishes: the public half, for ECDH-ES only."""
    return {
        "kty": "EC",
        "crv": private["crv"],
        "x": private["x"],
        "y": private["y"],
        "kid": private["kid"],
        "use": "enc",
        "alg": ENCRYPTION_ALG,
    }


def _protected_header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 5 or not parts[0] or len(parts[0]) > _MAX_HEADER_BYTES:
        raise EncryptionError("malformed_response", "response is not a compact JWE")
    try:
        header = json_loads(b64url_decode(parts[0]))
    except EncodingError:
        raise EncryptionError("malformed_response", "JWE header is not JSON") from None
    if not isinstance(header, dict):
        raise EncryptionError("malformed_response", "JWE header is not a JSON object")
    return header


def decrypt_response(
    token: str,
    *,
    private_jwk: Mapping[str, str],
    enc_values: Sequence[str] = ENCRYPTION_VALUES,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> dict[str, Any]:
    """The Authorization Response parameters inside ``token``, a JWE to ``private_jwk``."""
    if len(token) > max_bytes:
        raise EncryptionError("response_too_large", "the encrypted response is too large")
    if not token.isascii():
        raise EncryptionError("malformed_response", "response is not a compact JWE")
    header = _protected_header(token)
    if header.get("alg") != ENCRYPTION_ALG or header.get("enc") not in enc_values:
        raise EncryptionError(
            "unsupported_encryption", "alg must be ECDH-ES and enc one the request offered"
        )
    # No extension is understood; zip would inflate a small body into a large one.
    if "crit" in header or "zip" in header:
        raise EncryptionError("unsupported_encryption", "unsupported JWE header parameter")
    kid = header.get("kid")
    if kid is not None and kid != private_jwk.get("kid"):
        raise EncryptionError("decryption_failed", "encrypted to another request's key")
    key = ECKey.import_key(dict(private_jwk))
    try:
        decrypted = jwe.decrypt_compact(token, key, algorithms=[ENCRYPTION_ALG, header["enc"]])
    except (JoseError, ValueError, TypeError) as exc:
        raise EncryptionError("decryption_failed", "the response does not decrypt") from exc
    try:
        payload = json_loads(decrypted.plaintext or b"")
    except EncodingError:
        raise EncryptionError("malformed_response", "decrypted response is not JSON") from None
    if not isinstance(payload, dict):
        raise EncryptionError("malformed_response", "decrypted response is not an object")
    return payload


def encrypt_response(
    parameters: Mapping[str, Any], *, public_jwk: Mapping[str, Any], enc: str = "A128GCM"
) -> str:
    """The wallet's half: the Authorization Response as a JWE to the request's key."""
    if enc not in ENCRYPTION_VALUES:
        raise EncryptionError("unsupported_encryption", "enc is not A128GCM or A256GCM")
    header: dict[str, Any] = {"alg": ENCRYPTION_ALG, "enc": enc}
    if "kid" in public_jwk:
        header["kid"] = public_jwk["kid"]
    key = ECKey.import_key({k: public_jwk[k] for k in ("kty", "crv", "x", "y")})
    return jwe.encrypt_compact(header, json_dumps(dict(parameters)).encode("utf-8"), key)
