"""A stored credential's current status, as any holder can learn it: fetch the Token Status
List its ``status.status_list.uri`` names, verify the list against the issuer's published
keys, and read the credential's entry."""

from __future__ import annotations

import time
from typing import Literal

import httpx

from service.core.status_list import StatusListError, get_status
from service.core.status_token import STATUS_LIST_TYP, read_status_list
from service.wallet.openid4vci import check_url, issuer_keys
from service.wallet.store import MDOC, StoredCredential, WalletError, mdoc_mso

__all__ = ["StatusName", "credential_status"]

StatusName = Literal["valid", "revoked", "suspended", "unknown"]
_NAMES: dict[int, StatusName] = {0: "valid", 1: "revoked", 2: "suspended"}
MAX_LIST = 16 * 1024 * 1024


def credential_status(stored: StoredCredential, http: httpx.Client) -> StatusName:
    # An mdoc's status reference is in its MSO; the list is the same one.
    payload = mdoc_mso(stored.credential) if stored.format == MDOC else stored.payload()
    status = payload.get("status")
    reference = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(reference, dict):
        raise WalletError("this credential names no status list")
    uri, idx = reference.get("uri"), reference.get("idx")
    if not isinstance(uri, str) or not isinstance(idx, int) or isinstance(idx, bool):
        raise WalletError("this credential's status reference is malformed")
    check_url(uri, "the status list")
    keys = issuer_keys(stored.issuer, http)
    try:
        response = http.get(uri, headers={"Accept": f"application/{STATUS_LIST_TYP}"})
    except httpx.HTTPError as exc:
        raise WalletError(f"the status list could not be fetched: {exc}") from exc
    if response.status_code != 200 or len(response.content) > MAX_LIST:
        raise WalletError(f"the status list answered HTTP {response.status_code}")
    try:
        token = read_status_list(response.text.strip(), keys=keys, uri=uri, now=int(time.time()))
        value = get_status(token.data, idx, token.bits)
    except StatusListError as exc:
        raise WalletError(f"the status list does not verify: {exc}") from exc
    return _NAMES.get(value, "unknown")
