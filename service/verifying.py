"""Verifying presentations: the core pipeline plus one status lookup in the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from .core.reasons import Failure, Reason
from .core.verify import Expectations, Policy, TrustedIssuer, Verdict, conclude, inspect
from .errors import StoreUnavailable
from .settings import Settings
from .store.status import StatusStore, UnknownStatusEntry

__all__ = ["Verifier", "policy_from"]


def policy_from(settings: Settings) -> Policy:
    return Policy(
        max_size=settings.max_credential_bytes,
        accept_legacy_typ=settings.accept_legacy_typ,
        clock_skew=settings.clock_skew_seconds,
        kb_max_age=settings.kb_max_age_seconds,
    )


class Verifier:
    def __init__(
        self,
        *,
        settings: Settings,
        trusted: Mapping[str, TrustedIssuer],
        status: StatusStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trusted = trusted
        self._status = status
        self._policy = policy_from(settings)
        self._own_lists = settings.status_list_uri("")
        self._clock = clock

    async def verify(
        self, presentation: str, *, nonce: str | None = None, audience: str | None = None
    ) -> Verdict:
        """A verdict for ``presentation``. Raises StoreUnavailable (with the verdict attached
        as ``exc.extra["verdict"]``) when the status cannot be read: never a guess."""
        inspection = inspect(
            presentation,
            trusted=self._trusted,
            policy=self._policy,
            expect=Expectations(nonce=nonce, audience=audience),
            now=int(self._clock()),
        )
        ref = inspection.status_ref
        if ref is None or not inspection.signature_verified:
            return conclude(inspection, None)
        if not ref.uri.startswith(self._own_lists):
            return conclude(
                inspection, None,
                status_failure=Failure.of(Reason.INVALID_STATUS_REFERENCE, "unknown list"),
            )
        try:
            status = await self._status.status_of(ref.uri.removeprefix(self._own_lists), ref.idx)
        except UnknownStatusEntry:
            return conclude(
                inspection, None,
                status_failure=Failure.of(Reason.INVALID_STATUS_REFERENCE, "unknown entry"),
            )
        except StoreUnavailable as exc:
            exc.extra["verdict"] = conclude(inspection, None, unavailable=True)
            raise
        return conclude(inspection, status)
