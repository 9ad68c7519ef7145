"""Issuing credentials and managing their status: core logic joined to the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.core import credential
from service.core.claims import ClaimProblem, national_id_problems, normalise_collecting
from service.core.credential import StatusReference
from service.core.keys import JWKError, parse_public_jwk, public_jwk
from service.core.status_list import StatusValue
from service.errors import (
    InvalidClaims,
    InvalidHolderKey,
    InvalidRequest,
    UnsupportedCredentialType,
)
from service.keyring.keyring import KeyRing
from service.services.type_metadata import national_id_claim_paths
from service.settings import Settings
from service.store.clients import Client, Scope
from service.store.status import CredentialRecord, StatusStore

__all__ = ["CheckedRequest", "IssuedCredential", "Issuer"]

DAY = 86_400


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """Claims normalised and checked for their type, with the type and lifetime resolved."""

    claims: dict[str, Any]
    vct: str
    valid_for_days: int


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    credential_id: str
    credential: str
    status: StatusReference  # not credential.StatusReference: the field above shadows it
    issued_at: int
    expires_at: int
    #: Type and signing key, for the audit trail (a key's credentials can then be found).
    vct: str = ""
    kid: str = ""


def _invalid_claims(problems: list[ClaimProblem]) -> InvalidClaims:
    """Every claim problem at once: in ``detail`` for people, in ``errors`` for programs
    (``loc`` from the request body, as the schema's own validation errors have it), and the
    first one's ``path``. Names where, never what value was there."""
    errors = []
    for problem in problems:
        item: dict[str, Any] = {
            "loc": ["body", *(str(part) for part in problem.loc)],
            "type": problem.fault.value,
            "message": problem.problem,
        }
        if problem.limit:
            item["limit"] = dict(problem.limit)
        errors.append(item)
    detail = "; ".join(f"{p.path}: {p.problem}" for p in problems)
    return InvalidClaims(detail, path=problems[0].path, errors=errors)


class Issuer:
    def __init__(
        self,
        *,
        settings: Settings,
        keys: Callable[[], KeyRing],
        status: StatusStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        # A callable, not a ring: the signing key can change while the server runs.
        self._keys = keys
        self._status = status
        self._clock = clock
        self.credential_types = frozenset({settings.national_id_vct})

    def check(
        self,
        claims: Mapping[str, Any],
        *,
        vct: str | None = None,
        valid_for_days: int | None = None,
    ) -> CheckedRequest:
        """Every check :meth:`issue` makes on the request but the holder key, with nothing
        signed or stored: a credential offer is checked when it is made, not when the wallet
        comes for it minutes later."""
        settings = self._settings
        vct = vct or settings.national_id_vct
        if vct not in self.credential_types:
            raise UnsupportedCredentialType(
                f"This service issues {', '.join(sorted(self.credential_types))} only."
            )
        days = valid_for_days if valid_for_days is not None else settings.default_validity_days
        if not 1 <= days <= settings.max_validity_days:
            raise InvalidRequest(f"valid_for_days must be 1 to {settings.max_validity_days}.")
        now = int(self._clock())
        checked, problems = normalise_collecting(claims)
        if vct == settings.national_id_vct and isinstance(claims, Mapping) and claims:
            refused = {problem.loc for problem in problems}
            problems += [
                problem
                for problem in national_id_problems(
                    checked,
                    today=datetime.fromtimestamp(now, UTC).date(),
                    defined=national_id_claim_paths(),
                )
                if problem.loc not in refused  # one problem per claim: the first found
            ]
        if problems:
            raise _invalid_claims(problems)
        return CheckedRequest(claims=checked, vct=vct, valid_for_days=days)

    async def issue(
        self,
        claims: Mapping[str, Any],
        *,
        vct: str | None = None,
        holder_jwk: Mapping[str, Any] | None = None,
        valid_for_days: int | None = None,
        client: str = "",
    ) -> IssuedCredential:
        """Sign a credential for ``client``, the API client it belongs to (its status is that
        client's to change; see ``_owner_filter``)."""
        settings = self._settings
        request = self.check(claims, vct=vct, valid_for_days=valid_for_days)
        checked, vct, days = request.claims, request.vct, request.valid_for_days
        now = int(self._clock())
        cnf_jwk = None
        if holder_jwk is not None:
            try:
                holder_key = parse_public_jwk(holder_jwk)
            except JWKError as exc:
                raise InvalidHolderKey(str(exc)) from exc
            # Only the public members go into the credential, in canonical form.
            cnf_jwk = public_jwk(holder_key.key)
        key = self._keys().active
        expires_at = now + days * DAY
        record = await self._status.reserve(
            vct=vct, issued_at=now, expires_at=expires_at, kid=key.kid, client=client
        )
        status_ref = credential.StatusReference(
            uri=settings.status_list_uri(record.list_id), idx=record.idx
        )
        token = credential.issue(
            checked,
            issuer=settings.issuer_url,
            vct=vct,
            key=key,
            status=status_ref,
            issued_at=now,
            expires_at=expires_at,
            holder_jwk=cnf_jwk,
        )
        return IssuedCredential(
            credential_id=record.credential_id,
            credential=token,
            status=status_ref,
            issued_at=now,
            expires_at=expires_at,
            vct=vct,
            kid=key.kid,
        )

    def require_signing_key(self) -> None:
        """Raise ``KeyRingUnavailable`` now if nothing can be signed, before a caller spends
        something it cannot get back (a wallet's nonce, an offer's parked claims)."""
        _ = self._keys().active

    async def describe(self, credential_id: str, *, client: Client) -> CredentialRecord:
        return await self._status.get(credential_id, owner=_owner_filter(client))

    async def set_status(
        self, credential_id: str, target: StatusValue, *, client: Client
    ) -> StatusValue:
        return await self._status.change(
            credential_id, target, now=int(self._clock()), owner=_owner_filter(client)
        )


def _owner_filter(client: Client) -> str | None:
    """A credential belongs to the API client that issued it (directly or through an offer):
    another client, even with the ``revoke`` scope, neither reads nor changes it and is told
    ``credential_not_found``, so not even its existence leaks. The ``admin`` scope crosses
    that line. Records written before credentials had an owner have none: admin only."""
    return None if Scope.ADMIN in client.scopes else client.name
