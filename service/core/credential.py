"""SD-JWT VC credentials as Thiqa issues them (RFC 9901, draft-ietf-oauth-sd-jwt-vc).

Every personal claim is selectively disclosable; what a verifier needs to judge the credential
(``iss``, ``iat``, ``exp``, ``vct``, ``cnf``, ``status``) is always in the clear.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from service.core import jws
from service.core.keys import SigningKey
from service.core.sdjwt import DEFAULT_HASH, encode, mark_all

__all__ = [
    "CREDENTIAL_TYP",
    "KB_TYP",
    "LEGACY_CREDENTIAL_TYP",
    "NEVER_DISCLOSABLE",
    "StatusReference",
    "issue",
]

CREDENTIAL_TYP: Final = "dc+sd-jwt"
#: Older wallets and issuers still send this; accepted on verification only.
LEGACY_CREDENTIAL_TYP: Final = "vc+sd-jwt"
KB_TYP: Final = "kb+jwt"
#: SD-JWT VC §3.2.2: these may never be selectively disclosed.
NEVER_DISCLOSABLE: Final = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})


@dataclass(frozen=True, slots=True)
class StatusReference:
    """Where a credential's status lives: Token Status List ``{"idx", "uri"}``."""

    uri: str
    idx: int

    def claim(self) -> dict[str, Any]:
        return {"status_list": {"idx": self.idx, "uri": self.uri}}


def issue(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    vct: str,
    key: SigningKey,
    status: StatusReference,
    issued_at: int,
    expires_at: int,
    holder_jwk: Mapping[str, Any] | None = None,
    structure: Callable[[Mapping[str, Any]], Mapping[str, Any]] = mark_all,
) -> str:
    """Sign ``claims`` as an SD-JWT VC and return the issuance form ``<jwt>~<d1>~...~``.

    ``claims`` must already be checked (:mod:`service.core.claims`); ``structure`` marks what
    is disclosable and defaults to every claim, recursively.
    """
    if expires_at <= issued_at:
        raise ValueError("a credential must expire after it is issued")
    sd_fragment, disclosures = encode(structure(claims), hash_alg=DEFAULT_HASH)
    payload: dict[str, Any] = {
        "iss": issuer,
        "iat": issued_at,
        "exp": expires_at,
        "vct": vct,
    }
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": dict(holder_jwk)}
    payload["status"] = status.claim()
    payload["_sd_alg"] = DEFAULT_HASH
    payload.update(sd_fragment)
    token = jws.encode(payload, key, typ=CREDENTIAL_TYP)
    return token + "~" + "".join(d.encoded + "~" for d in disclosures)
