"""Bridges between Thiqa's keys and the reference SD-JWT library (PyPI ``sd-jwt``, jwcrypto).

The reference library is an independent implementation: it is only ever given public keys
and compact strings, never Thiqa objects, so what it accepts it accepted on its own reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from service.core.encoding import b64url_decode
from service.core.keys import SigningKey, VerificationKey, jwk_thumbprint, public_jwk

__all__ = [
    "reference_jwk",
    "reference_verify",
    "signing_key",
    "signing_key_from_jwk",
]


def signing_key(private: ec.EllipticCurvePrivateKey, kid: str | None = None) -> SigningKey:
    """A Thiqa ES256 signing key over the very same private key object."""
    return SigningKey(
        kid=kid if kid is not None else jwk_thumbprint(public_jwk(private)),
        alg="ES256",
        key=private,
    )


def signing_key_from_jwk(jwk: Mapping[str, Any], kid: str | None = None) -> SigningKey:
    """A P-256 private JWK (with ``d``) as a Thiqa signing key."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("only P-256 keys are used here")
    d = int.from_bytes(b64url_decode(jwk["d"]), "big")
    return signing_key(ec.derive_private_key(d, ec.SECP256R1()), kid)


def reference_jwk(key: SigningKey | VerificationKey, *, private: bool = False) -> JWK:
    """The same key as a jwcrypto JWK; public only unless ``private`` is asked for."""
    if isinstance(key, SigningKey):
        if private:
            return JWK.from_pyca(key.key)
        key = key.verification_key()
    elif private:
        raise ValueError("a verification key has no private half")
    return JWK.from_pyca(key.key)


def reference_verify(
    presentation: str,
    *,
    issuer: str,
    keys: Mapping[str, VerificationKey | JWK],
    nonce: str | None = None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Verify with the reference library; return its verified payload, or raise its error.

    The callback chooses the issuer's key by the header's ``kid`` among ``keys`` only, as a
    verifier must: a token never brings its own key. ``keys`` may be jwcrypto JWKs, so that a
    key published by Thiqa can be read by the reference side's own JWK parser.
    """
    seen: list[tuple[str, dict[str, Any]]] = []

    def issuer_key(iss: str, header: dict[str, Any]) -> JWK:
        seen.append((iss, header))
        if iss != issuer:
            raise LookupError("unexpected issuer")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in keys:
            raise LookupError("unknown kid")
        key = keys[kid]
        return key if isinstance(key, JWK) else reference_jwk(key)

    verifier = SDJWTVerifier(
        presentation,
        issuer_key,
        expected_aud=audience,
        expected_nonce=nonce,
        serialization_format="compact",
    )
    # The callback ran exactly once, for the issuer JWT.
    assert len(seen) == 1
    return verifier.get_verified_payload()
