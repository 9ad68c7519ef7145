"""Verifying presentations: the core pipeline plus one status lookup in the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from service.core.reasons import Failure, Reason
from service.core.status_list import StatusValue
from service.core.verify import Expectations, Policy, TrustedIssuer, Verdict, conclude, inspect
from service.errors import StatusUnavailable, StoreUnavailable
from service.services.remote_status import RemoteStatus, StatusLookupFailed
from service.settings import Settings
from service.store.status import StatusStore, UnknownStatusEntry

__all__ = ["Verifier", "policy_from"]


def policy_from(settings: Settings) -> Policy:
    return Policy(
        max_size=settings.max_credential_bytes,
        accept_legacy_typ=settings.accept_legacy_typ,
        clock_skew=settings.clock_skew_seconds,
        kb_max_age=settings.kb_max_age_seconds,
        require_key_binding=settings.require_key_binding,
    )


class Verifier:
    def __init__(
        self,
        *,
        settings: Settings,
        trusted: Mapping[str, TrustedIssuer],
        status: StatusStore,
        remote: RemoteStatus,
        refresh_keys: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trusted = trusted
        self._own = settings.issuer_url
        self._status = status
        self._remote = remote
        self._policy = policy_from(settings)
        self._own_lists = settings.status_list_uri("")
        self._refresh_keys = refresh_keys
        self._clock = clock

    def trusts_type(self, vct: str) -> bool:
        """Whether some trusted issuer may issue ``vct``: asking a wallet for any other type
        could only ever end in ``untrusted_type``."""
        return any(vct in issuer.types for issuer in self._trusted.values())

    def trusted_types(self) -> list[str]:
        """Every credential type some trusted issuer may issue, sorted."""
        return sorted({vct for issuer in self._trusted.values() for vct in issuer.types})

    async def verify(
        self, presentation: str, *, nonce: str | None = None, audience: str | None = None
    ) -> Verdict:
        """A verdict for ``presentation``. Raises StatusUnavailable, carrying the verdict (not
        valid, ``status_unavailable``), when the status store cannot be read: never a guess."""
        expect = Expectations(nonce=nonce, audience=audience)
        now = int(self._clock())
        inspection = inspect(
            presentation, trusted=self._trusted, policy=self._policy, expect=expect, now=now
        )
        if (
            self._refresh_keys is not None
            and inspection.failures
            and inspection.failures[0].reason is Reason.UNKNOWN_KEY
            and self._refresh_keys()
        ):
            # The key may be one another process published a moment ago: look once more.
            inspection = inspect(
                presentation, trusted=self._trusted, policy=self._policy, expect=expect, now=now
            )
        ref = inspection.status_ref
        if ref is None or inspection.issuer is None:
            return conclude(inspection, None)
        try:
            if inspection.issuer == self._own:
                status = await self._own_status(ref.uri, ref.idx)
            else:
                status = await self._remote.status_of(self._trusted[inspection.issuer], ref)
        except StatusLookupFailed as failed:
            return conclude(inspection, None, status_failure=failed.failure)
        except StoreUnavailable as exc:
            verdict = conclude(inspection, None, unavailable=True)
            raise StatusUnavailable(exc.detail, verdict=verdict) from exc
        return conclude(inspection, status)

    async def _own_status(self, uri: str, idx: int) -> StatusValue:
        if not uri.startswith(self._own_lists):
            raise StatusLookupFailed(
                Failure.of(Reason.INVALID_STATUS_REFERENCE, "not one of this issuer's lists")
            )
        try:
            return await self._status.status_of(uri.removeprefix(self._own_lists), idx)
        except UnknownStatusEntry:
            raise StatusLookupFailed(
                Failure.of(Reason.INVALID_STATUS_REFERENCE, "unknown list or index")
            ) from None
