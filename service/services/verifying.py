"""Verifying presentations: the core pipeline plus one status lookup in the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service.core.encoding import EncodingError, b64url_decode
from service.core.mdoc.cbor import CBORLimits
from service.core.mdoc.verify import MdocAnchor, inspect_mdoc
from service.core.memo import Memo
from service.core.reasons import Failure, Reason
from service.core.verify import (
    Expectations,
    Inspection,
    Policy,
    TrustedIssuer,
    Verdict,
    conclude,
    inspect,
)
from service.errors import StatusUnavailable, StoreUnavailable
from service.services.remote_status import RemoteStatus, StatusLookupFailed
from service.settings import Settings
from service.store.round_trip import ScriptCall, run_together
from service.store.status import StatusListLost, StatusStore, UnknownStatusEntry

__all__ = ["Presented", "Verifier", "policy_from"]


@dataclass(frozen=True, slots=True)
class Presented:
    """One presentation to verify, with what the verifying app bound it to."""

    credential: str
    nonce: str | None = None
    audience: str | None = None

    @property
    def expectations(self) -> Expectations:
        return Expectations(nonce=self.nonce, audience=self.audience)


#: A DeviceResponse is CBOR with certificates and maybe a portrait: more room than a JWT, still
#: under the 64 KiB request cap.
_MDOC_LIMITS = CBORLimits(max_bytes=64 * 1024, max_depth=16, max_items=8_000)


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
        redis: aioredis.Redis,
        remote: RemoteStatus,
        refresh_keys: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.time,
        mdoc_anchors: Sequence[MdocAnchor] = (),
    ) -> None:
        self._trusted = trusted
        self._mdoc_anchors = tuple(mdoc_anchors)
        self._own = settings.issuer_url
        self._status = status
        self._redis = redis
        # Results that depend only on exact bytes, kept across presentations (core.memo).
        self._memo = Memo()
        self._remote = remote
        self._policy = policy_from(settings)
        self._own_lists = settings.status_list_uri("")
        self._refresh_keys = refresh_keys
        self._clock = clock

    def trusts_type(self, vct: str) -> bool:
        """Whether some trusted issuer may issue ``vct``: asking a wallet for any other type
        could only ever end in ``untrusted_type``."""
        return any(vct in issuer.types for issuer in self._trusted.values())

    def trusts_doctype(self, doctype: str) -> bool:
        """Whether some trusted IACA may sign mdocs of ``doctype``."""
        return any(not a.doctypes or doctype in a.doctypes for a in self._mdoc_anchors)

    def trusted_types(self) -> list[str]:
        """Every credential type some trusted issuer may issue, sorted."""
        return sorted({vct for issuer in self._trusted.values() for vct in issuer.types})

    def _inspect(self, presentation: str, expect: Expectations, now: int) -> Inspection:
        def once() -> Inspection:
            return inspect(
                presentation,
                trusted=self._trusted,
                policy=self._policy,
                expect=expect,
                now=now,
                memo=self._memo,
            )

        inspection = once()
        if (
            self._refresh_keys is not None
            and inspection.failures
            and inspection.failures[0].reason is Reason.UNKNOWN_KEY
            and self._refresh_keys()
        ):
            # The key may be one another process published a moment ago: look once more.
            inspection = once()
        return inspection

    async def verify_mdoc(
        self, presentation: str, *, transcript: Any, doctype: str | None = None
    ) -> Verdict:
        """A verdict for a DeviceResponse (base64url, as ``vp_token`` carries it) presented
        over OpenID4VP, ``transcript`` being the SessionTranscript built from the request
        (service.core.mdoc.handover). Same shape, codes and status rules as :meth:`verify`;
        raises StatusUnavailable likewise."""
        try:
            device_response = b64url_decode(presentation)
        except EncodingError:
            return conclude(
                Inspection(failures=(Failure.of(Reason.CBOR_MALFORMED, "not base64url"),)), None
            )
        inspection = inspect_mdoc(
            device_response,
            transcript=transcript,
            anchors=self._mdoc_anchors,
            now=int(self._clock()),
            clock_skew=self._policy.clock_skew,
            doctype=doctype,
            limits=_MDOC_LIMITS,
        )
        verdicts, _ = await self._conclude_together([inspection])
        return verdicts[0]

    async def verify(
        self, presentation: str, *, nonce: str | None = None, audience: str | None = None
    ) -> Verdict:
        """A verdict for ``presentation``. Raises StatusUnavailable, carrying the verdict (not
        valid, ``status_unavailable``), when the status store cannot be read: never a guess."""
        verdicts, _ = await self.verify_together([Presented(presentation, nonce, audience)])
        return verdicts[0]

    async def verify_together(
        self, presented: Sequence[Presented], *, alongside: Sequence[ScriptCall] = ()
    ) -> tuple[list[Verdict], list[Any]]:
        """Verdicts for ``presented``, in order, with every status lookup of this issuer's
        lists (and the ``alongside`` calls, such as the caller's authentication) sent to
        Redis in one round trip; returns the verdicts and the answers to ``alongside``.

        When Redis cannot answer: for a single presentation raises StatusUnavailable carrying
        its verdict (not valid, ``status_unavailable``); for several, StoreUnavailable. Never
        a guess.
        """
        now = int(self._clock())
        inspections = [self._inspect(p.credential, p.expectations, now) for p in presented]
        return await self._conclude_together(inspections, alongside=alongside)

    async def _conclude_together(
        self, inspections: Sequence[Inspection], *, alongside: Sequence[ScriptCall] = ()
    ) -> tuple[list[Verdict], list[Any]]:
        calls: list[ScriptCall] = list(alongside)
        own: dict[int, int] = {}  # presentation -> its call
        settled: dict[int, Verdict] = {}
        for n, inspection in enumerate(inspections):
            ref = inspection.status_ref
            if ref is None or inspection.issuer is None:
                settled[n] = conclude(inspection, None)
            elif inspection.issuer != self._own:
                continue  # another issuer's list: looked up below, from its cache
            elif not ref.uri.startswith(self._own_lists):
                settled[n] = conclude(inspection, None, status_failure=_NOT_OURS)
            else:
                try:
                    call = self._status.status_call(ref.uri.removeprefix(self._own_lists), ref.idx)
                except UnknownStatusEntry:
                    settled[n] = conclude(inspection, None, status_failure=_UNKNOWN_ENTRY)
                    continue
                own[n] = len(calls)
                calls.append(call)
        try:
            answers = await run_together(self._redis, calls) if calls else []
        except StoreUnavailable as exc:
            if len(inspections) == 1:
                verdict = conclude(inspections[0], None, unavailable=True)
                raise StatusUnavailable(exc.detail, verdict=verdict) from exc
            raise
        verdicts: list[Verdict] = []
        for n, inspection in enumerate(inspections):
            if n in settled:
                verdicts.append(settled[n])
            elif n in own:
                verdicts.append(self._own_verdict(inspection, answers[own[n]]))
            else:
                verdicts.append(await self._remote_verdict(inspection))
        return verdicts, answers[: len(alongside)]

    def _own_verdict(self, inspection: Inspection, answer: int) -> Verdict:
        try:
            status = StatusStore.read_status(answer)
        except UnknownStatusEntry:
            return conclude(inspection, None, status_failure=_UNKNOWN_ENTRY)
        except StatusListLost:
            # Fail closed: the list this issuer published is gone, so nothing is known.
            return conclude(inspection, None, status_failure=_LIST_LOST)
        return conclude(inspection, status)

    async def _remote_verdict(self, inspection: Inspection) -> Verdict:
        assert inspection.issuer is not None
        assert inspection.status_ref is not None
        if inspection.issuer not in self._trusted:
            # Another IACA's mdoc: CWT status lists of other issuers are not fetched (yet),
            # and an unread status is never "valid".
            return conclude(inspection, None, unavailable=True)
        try:
            status = await self._remote.status_of(
                self._trusted[inspection.issuer], inspection.status_ref
            )
        except StatusLookupFailed as failed:
            return conclude(inspection, None, status_failure=failed.failure)
        return conclude(inspection, status)


_NOT_OURS = Failure.of(Reason.INVALID_STATUS_REFERENCE, "not one of this issuer's lists")
_UNKNOWN_ENTRY = Failure.of(Reason.INVALID_STATUS_REFERENCE, "unknown list or index")
_LIST_LOST = Failure.of(Reason.STATUS_UNAVAILABLE, "status list missing")
