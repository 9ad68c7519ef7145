"""Presentation requests (OpenID4VP): the protocol core joined to the store and the verifier.

A relying party creates a request; the citizen's wallet fetches it and answers at its
``response_uri`` by ``direct_post``; Thiqa verifies the presentation with the same pipeline as
``POST /v1/verify`` (nonce and audience required, so a KB-JWT is too), holds it to the request
(type, every requested claim) and keeps a result with the requested claims only, which the
relying party reads by polling, long-polling or an event stream.

Answers to the wallet follow OpenID4VP 1.0 (Response Mode direct_post): :meth:`Presenter.answer`
returns when the answer was processed and accepted, and otherwise raises one of the
:class:`~service.errors.DirectPostError` classes (``presentation_rejected`` carries the verdict's
codes); the API answers them in OAuth style.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from service.core.openid4vp import (
    ClaimPath,
    Outcome,
    PresentationRequest,
    RequestError,
    VpTokenError,
    check_paths,
    check_purpose,
    judge,
    new_secret,
    read_vp_token,
    wallet_error_code,
    wallet_uri,
)
from service.core.reasons import Failure, Reason
from service.core.verify import Verdict
from service.errors import (
    DirectPostError,
    InvalidRequest,
    MalformedResponse,
    NonceReplayed,
    PresentationRejected,
    PresentationRequestAnswered,
    PresentationRequestExpired,
    PresentationRequestNotFound,
    ResponseStoreUnavailable,
    ResponseTooLate,
    StateMismatch,
    StatusUnavailable,
    StoreUnavailable,
    UnknownPresentationRequest,
    UnsupportedCredentialType,
)
from service.services.verifying import Verifier
from service.settings import Settings
from service.store.presentations import Claim, PresentationStore, Status, StoredRequest

__all__ = [
    "MAX_WAIT_SECONDS",
    "Created",
    "Presenter",
    "SpentRequest",
    "State",
    "View",
]

State = Literal["pending", "completed", "failed", "expired"]

#: The longest a long-poll holds a connection: long enough to save most polls, short enough
#: for every proxy's idle timeout.
MAX_WAIT_SECONDS: Final = 30
#: Idle event streams get a comment this often, so proxies do not close them.
KEEPALIVE_SECONDS: Final = 15.0
#: An answer accepted just before expiry is still being verified just after it (a remote
#: status list may take seconds); only past this grace is an unfinished answer "expired".
ANSWER_GRACE_MS: Final = 10_000
#: The longest a waiter sleeps between two looks at the state, news or not.
_LOOK_EVERY: Final = 1.0


@dataclass(frozen=True, slots=True)
class Created:
    request: PresentationRequest
    request_uri: str
    wallet_uri: str


@dataclass(frozen=True, slots=True)
class View:
    """What the relying party sees of its request."""

    request_id: str
    state: State
    verdict: dict[str, Any] | None
    expires_at: int
    #: Milliseconds on the service's clock after which a pending view can only be "expired".
    settles_ms: int

    @property
    def final(self) -> bool:
        return self.state != "pending"

    def body(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "state": self.state, "verdict": self.verdict}


class SpentRequest(Protocol):
    """Told once an answer has spent a request, whatever comes of it: what was concluded and
    for which relying party (the API's audit trail and metrics)."""

    def __call__(self, outcome: Outcome, client: str) -> None: ...


#: Why a request could not be claimed for an answer.
_CLAIM_ERRORS: Final[dict[Claim, type[DirectPostError]]] = {
    Claim.NOT_FOUND: UnknownPresentationRequest,
    Claim.STATE_MISMATCH: StateMismatch,
    Claim.REPLAYED: NonceReplayed,
    Claim.EXPIRED: ResponseTooLate,
}


class Presenter:
    def __init__(
        self,
        *,
        settings: Settings,
        store: PresentationStore,
        verifier: Verifier,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._verifier = verifier
        self._clock = clock
        self._monotonic = monotonic
        self._keep_ms = settings.presentation_result_ttl_seconds * 1000

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def request_uri(self, request_id: str) -> str:
        return f"{self._settings.issuer_url}/presentation-requests/{request_id}"

    def response_uri(self, request_id: str) -> str:
        return f"{self._settings.issuer_url}/presentation-responses/{request_id}"

    # The relying party's side --------------------------------------------------------------

    async def create(
        self,
        client: str,
        *,
        claims: Sequence[Sequence[Any]],
        purpose: str,
        vct: str | None = None,
        expires_in: int | None = None,
    ) -> Created:
        settings = self._settings
        vct = vct or settings.national_id_vct
        if not self._verifier.trusts_type(vct):
            trusted = ", ".join(self._verifier.trusted_types())
            raise UnsupportedCredentialType(
                f"No issuer this service trusts issues that type; it can ask for {trusted}."
            )
        longest = settings.presentation_max_ttl_seconds
        ttl = (
            expires_in
            if expires_in is not None
            else min(settings.presentation_ttl_seconds, longest)
        )
        if not 1 <= ttl <= longest:
            raise InvalidRequest(f"expires_in must be 1 to {longest} seconds.")
        try:
            paths: tuple[ClaimPath, ...] = check_paths(claims)
            purpose = check_purpose(purpose)
        except RequestError as exc:
            raise InvalidRequest(f"{exc}.") from None
        request_id = new_secret()
        now_ms = self._now_ms()
        request = PresentationRequest(
            request_id=request_id,
            response_uri=self.response_uri(request_id),
            nonce=new_secret(),
            state=new_secret(),
            vct=vct,
            paths=paths,
            purpose=purpose,
            client_name=client,
            issued_ms=now_ms,
            expires_ms=now_ms + ttl * 1000,
        )
        await self._store.create(request, client=client, keep_ms=self._keep_ms)
        request_uri = self.request_uri(request_id)
        return Created(request, request_uri, wallet_uri(request.client_id, request_uri))

    def _view(self, stored: StoredRequest) -> View:
        request = stored.request
        if stored.status in (Status.COMPLETED, Status.FAILED):
            state: State = "completed" if stored.status is Status.COMPLETED else "failed"
            settles = request.expires_ms
        else:
            grace = ANSWER_GRACE_MS if stored.status is Status.ANSWERING else 0
            settles = request.expires_ms + grace
            state = "expired" if self._now_ms() >= settles else "pending"
        verdict = stored.result if state in ("completed", "failed") else None
        return View(request.request_id, state, verdict, request.expires_at, settles)

    async def view(self, request_id: str, client: str) -> View:
        """The request's state, for the client that made it; anyone else learns nothing,
        not even that it exists."""
        stored = await self._store.get(request_id)
        if stored is None or stored.client != client:
            raise PresentationRequestNotFound()
        return self._view(stored)

    def _until(self, view: View, deadline: float) -> float:
        """Seconds to sleep before the next look: news, the deadline or the expiry first."""
        to_settle = (view.settles_ms - self._now_ms()) / 1000 + 0.005
        return min(deadline - self._monotonic(), to_settle, _LOOK_EVERY)

    async def wait(self, request_id: str, client: str, seconds: float) -> View:
        """The state once it is final, or after ``seconds``, whichever comes first."""
        view = await self.view(request_id, client)
        if view.final or seconds <= 0:
            return view
        deadline = self._monotonic() + min(seconds, MAX_WAIT_SECONDS)
        async with self._store.watch(request_id) as watch:
            view = await self.view(request_id, client)
            while not view.final:
                pause = self._until(view, deadline)
                if pause <= 0:
                    break
                await watch.wait(pause)
                view = await self.view(request_id, client)
        return view

    async def events(self, first: View, client: str) -> AsyncIterator[View | None]:
        """``first`` (read before the stream began, so a stranger got a 404, not a stream),
        then each change of state until the final one; None when a keep-alive is due."""
        yield first
        if first.final:
            return
        sent = first.state
        quiet_since = self._monotonic()
        async with self._store.watch(first.request_id) as watch:
            view = await self.view(first.request_id, client)
            while True:
                if view.state != sent:
                    yield view
                    sent, quiet_since = view.state, self._monotonic()
                if view.final:
                    return
                if self._monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    yield None
                    quiet_since = self._monotonic()
                await watch.wait(self._until(view, quiet_since + KEEPALIVE_SECONDS))
                view = await self.view(first.request_id, client)

    # The wallet's side ---------------------------------------------------------------------

    async def request_for_wallet(self, request_id: str) -> PresentationRequest:
        stored = await self._store.get(request_id)
        if stored is None:
            raise PresentationRequestNotFound()
        if stored.status is not Status.PENDING:
            raise PresentationRequestAnswered()
        if self._now_ms() >= stored.request.expires_ms:
            raise PresentationRequestExpired()
        return stored.request

    async def answer(
        self, request_id: str, form: Mapping[str, str], *, spent: SpentRequest
    ) -> None:
        """Process an Authorization Response sent by ``direct_post``: returns when it is
        accepted (or is the wallet's own error response, processed); raises a
        :class:`DirectPostError` otherwise. ``spent`` is called once the request is spent."""
        state = form.get("state")
        if not state:
            raise StateMismatch("state is missing.")
        if "vp_token" not in form and "error" not in form:
            raise MalformedResponse()
        try:
            found, stored = await self._store.claim(request_id, state=state, now_ms=self._now_ms())
        except StoreUnavailable:
            raise ResponseStoreUnavailable("Try again shortly.") from None
        if found is not Claim.OK or stored is None:
            raise _CLAIM_ERRORS[found]()
        # The nonce is spent from here on: this answer is the request's only one, whatever
        # it turns out to be.
        request = stored.request
        unavailable = False
        if "vp_token" not in form:
            outcome = Outcome.refused(Reason.WALLET_ERROR, wallet_error_code(form["error"]))
        else:
            try:
                presentation = read_vp_token(form["vp_token"])
            except VpTokenError as exc:
                outcome = Outcome.refused(Reason.INVALID_VP_TOKEN, str(exc))
            else:
                try:
                    verdict = await self._verifier.verify(
                        presentation, nonce=request.nonce, audience=request.client_id
                    )
                except StatusUnavailable as exc:
                    unavailable = True
                    verdict = exc.verdict
                except StoreUnavailable:
                    unavailable = True
                    verdict = Verdict(failures=(Failure.of(Reason.STATUS_UNAVAILABLE),))
                outcome = judge(verdict, vct=request.vct, paths=request.paths)
        try:
            await self._store.finish(
                request_id, completed=outcome.valid, result=outcome.body(), keep_ms=self._keep_ms
            )
        except StoreUnavailable:
            unavailable = True
        spent(outcome, stored.client)
        if unavailable:
            raise ResponseStoreUnavailable()
        if "vp_token" in form and not outcome.valid:
            raise PresentationRejected(errors=outcome.body()["errors"])
        # Accepted; or the wallet's error response, processed (1.0, direct_post).
