"""The holder's side: choose what to disclose and bind the presentation to a verifier.

Used by the demo wallet and the tests; a real wallet does the same three things: keep only
the disclosures for the chosen claims (and the ones enclosing them), append a KB-JWT over the
result, signed with the key the credential is bound to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from service.core import jws
from service.core.credential import CREDENTIAL_TYP, KB_TYP, LEGACY_CREDENTIAL_TYP
from service.core.keys import SigningKey
from service.core.sdjwt import DEFAULT_HASH, digest, disclose, split

__all__ = ["ClaimPath", "disclosable_paths", "present"]

ClaimPath = tuple[str | int, ...]


def _related(path: ClaimPath, wanted: Sequence[ClaimPath]) -> bool:
    # A disclosure is needed if it encloses a wanted claim or lies inside a wanted one.
    return any(path == w[: len(path)] or w == path[: len(w)] for w in wanted)


def disclosable_paths(credential: str) -> list[ClaimPath]:
    """Every path the holder could choose to disclose, in issuance order."""
    parts = split(credential)
    token = _unverified(parts.issuer_jwt)
    return list(disclose(token.payload, parts.disclosures).paths.values())


def _unverified(issuer_jwt: str) -> jws.Jws:
    # The holder reads its own credential; the verifier is the one who checks the signature.
    return jws.parse(issuer_jwt, typ=frozenset({CREDENTIAL_TYP, LEGACY_CREDENTIAL_TYP}))


def present(
    credential: str,
    claims: Iterable[ClaimPath | str],
    *,
    holder_key: SigningKey | None = None,
    nonce: str | None = None,
    audience: str | None = None,
    now: int | None = None,
) -> str:
    """A presentation disclosing only ``claims`` (top-level names or paths).

    With ``holder_key`` a KB-JWT is appended; it then needs ``nonce``, ``audience`` and ``now``.
    """
    wanted = [(c,) if isinstance(c, str) else tuple(c) for c in claims]
    parts = split(credential)
    token = _unverified(parts.issuer_jwt)
    hash_alg = token.payload.get("_sd_alg", DEFAULT_HASH)
    paths = disclose(token.payload, parts.disclosures).paths
    kept = [d for d in parts.disclosures if _related(paths[digest(d, hash_alg)], wanted)]
    body = parts.issuer_jwt + "~" + "".join(d + "~" for d in kept)
    if holder_key is None:
        return body
    if nonce is None or audience is None or now is None:
        raise ValueError("key binding needs nonce, audience and now")
    kb_claims = {"iat": now, "aud": audience, "nonce": nonce, "sd_hash": digest(body, hash_alg)}
    return body + jws.encode(kb_claims, holder_key, typ=KB_TYP, include_kid=False)
