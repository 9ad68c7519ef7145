"""What the holder sees of its own credentials: the claims its disclosures hold, the names in
both scripts, and each claim's label from the type's metadata (Arabic, French, English)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.core import jws
from service.core.credential import CREDENTIAL_TYP, LEGACY_CREDENTIAL_TYP
from service.core.encoding import EncodingError, json_loads
from service.core.holder import ClaimPath
from service.core.reasons import VerificationFailure
from service.core.sdjwt import disclose, split
from service.wallet.openid4vci import check_url
from service.wallet.store import StoredCredential, WalletError

__all__ = ["claim_rows", "claims_of", "labels_for", "names", "type_labels"]

_ENVELOPE = frozenset(
    {"iss", "iat", "nbf", "exp", "vct", "vct#integrity", "cnf", "status", "_sd_alg"}
)


def claims_of(stored: StoredCredential) -> dict[str, Any]:
    """Every claim the credential's disclosures hold. The holder reads its own credential,
    which it checked when it received it; nothing here is a verification."""
    try:
        parts = split(stored.credential)
        token = jws.parse(parts.issuer_jwt, typ=frozenset({CREDENTIAL_TYP, LEGACY_CREDENTIAL_TYP}))
        resolved = disclose(token.payload, parts.disclosures)
    except VerificationFailure as failure:
        raise WalletError(f"credential {stored.id} cannot be read: {failure}") from failure
    return {k: v for k, v in resolved.claims.items() if k not in _ENVELOPE}


def claim_rows(
    claims: Mapping[str, Any], prefix: ClaimPath = ()
) -> Iterator[tuple[ClaimPath, Any]]:
    """(path, value) for every leaf claim, objects walked in their order."""
    for name, value in claims.items():
        path = (*prefix, name)
        if isinstance(value, dict):
            yield from claim_rows(value, path)
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from claim_rows(item, (*path, i))
                else:
                    yield (*path, i), item
        else:
            yield path, value


def names(claims: Mapping[str, Any]) -> tuple[str, str]:
    """The holder's name in Latin and in Arabic script (OpenID Connect §5.2 language tags)."""
    latin = " ".join(str(claims[n]) for n in ("given_name", "family_name") if n in claims)
    arabic = " ".join(str(claims[n]) for n in ("given_name#ar", "family_name#ar") if n in claims)
    return latin, arabic


def _packaged() -> dict[str, Any]:
    text = resources.files("service").joinpath("metadata/national-id.json").read_text("utf-8")
    metadata: dict[str, Any] = json.loads(text)
    return metadata


def type_labels(vct: str, http: httpx.Client | None) -> dict[ClaimPath, dict[str, str]]:
    """Claim labels by path and locale: from the Type Metadata at the ``vct`` URL, or, for
    Thiqa's national ID type when that cannot be fetched, from the copy Thiqa ships."""
    document: Any = None
    if http is not None:
        try:
            response = http.get(
                check_url(vct, "the credential type"), headers={"Accept": "application/json"}
            )
            if response.status_code == 200:
                document = json_loads(response.content)
        except (httpx.HTTPError, EncodingError, WalletError):
            document = None
    if not isinstance(document, dict) and urlsplit(vct).path.endswith("/types/national-id"):
        document = _packaged()
    labels: dict[ClaimPath, dict[str, str]] = {}
    if isinstance(document, dict):
        for claim in document.get("claims", []):
            if not isinstance(claim, dict) or not isinstance(claim.get("path"), list):
                continue
            labels[tuple(claim["path"])] = {
                d["locale"]: d["label"]
                for d in claim.get("display", [])
                if isinstance(d, dict)
                and isinstance(d.get("locale"), str)
                and isinstance(d.get("label"), str)
            }
    return labels


def labels_for(path: ClaimPath, labels: Mapping[ClaimPath, Mapping[str, str]], locale: str) -> str:
    found = labels.get(path, {})
    return found.get(locale) or found.get("en") or ".".join(str(p) for p in path)
