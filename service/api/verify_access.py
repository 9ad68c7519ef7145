"""Who may verify, decided in the verification's own Redis round trip.

A verifying app's API key is checked and counted by a script in the ``{clients}`` slot, and
the presentation's status read by one in its list's slot. For a key this process has already
seen authenticate with the ``verify`` scope, both go to Redis together in one pipelined round
trip, after the presentation has been inspected; the answer to the key's script decides, so
a client revoked a moment ago (by any process) is refused on its very next request, and its
verdict is thrown away unread. Any other key is authenticated first, in a round trip of its
own, so an unknown or revoked key never costs a signature check.

The set of seen keys is a hint, never a grant: it holds SHA-256 digests of keys (not keys),
bounded in size, and only chooses which of the two orders is taken.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from starlette.requests import Request

from service.api.deps import MALFORMED, NOT_ACCEPTED, api_key_of
from service.core.reasons import Failure, Reason
from service.core.verify import Verdict
from service.errors import InsufficientScope, StatusUnavailable, StoreUnavailable, Unauthenticated
from service.logs import bind_client
from service.services.runtime import Runtime
from service.services.verifying import Presented
from service.store.clients import Client, PendingAuthentication, Scope
from service.store.connection import translate_errors

__all__ = ["VerifyAccess", "bearer_key"]

_MAX_KNOWN = 10_000


async def bearer_key(request: Request) -> str:
    """:func:`service.api.deps.api_key_of` for the verification lane (async: FastAPI runs a
    plain def dependency on a worker thread, a hop per request)."""
    return api_key_of(request)


class VerifyAccess:
    def __init__(self, max_known: int = _MAX_KNOWN) -> None:
        self._known: OrderedDict[str, None] = OrderedDict()
        self._max_known = max_known

    async def verdicts(
        self, runtime: Runtime, api_key: str, presented: Sequence[Presented]
    ) -> tuple[Client, list[Verdict]]:
        """The authenticated client and one verdict per presentation. Raises Unauthenticated,
        InsufficientScope, RateLimited, StatusUnavailable (carrying a verdict, for a single
        presentation) or StoreUnavailable, like every API-key route."""
        pending = runtime.clients.authentication(
            api_key, per_minute=runtime.settings.rate_limit_per_minute
        )
        if pending is None:
            raise Unauthenticated(MALFORMED)
        if pending.presented in self._known:
            self._known.move_to_end(pending.presented)
            verdicts, (row,) = await runtime.verifier.verify_together(
                presented, alongside=[pending.call]
            )
            client = self._admit(pending, pending.read(row))
            return client, verdicts
        try:
            async with translate_errors():
                row = await pending.call.script(
                    keys=list(pending.call.keys), args=list(pending.call.args)
                )
        except StoreUnavailable as exc:
            if len(presented) == 1:
                # A verifying app always gets a verdict: not valid, status unavailable.
                verdict = Verdict(failures=(Failure.of(Reason.STATUS_UNAVAILABLE),))
                raise StatusUnavailable(exc.detail, verdict=verdict) from exc
            raise
        client = self._admit(pending, pending.read(row))
        self._known[pending.presented] = None
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)
        verdicts, _ = await runtime.verifier.verify_together(presented)
        return client, verdicts

    async def authenticated(self, runtime: Runtime, api_key: str) -> Client:
        """The client, authenticated in a round trip of its own (an mdoc verification, whose
        status lookup is not sent along with it). Raises like :meth:`verdicts` for a single
        presentation."""
        pending = runtime.clients.authentication(
            api_key, per_minute=runtime.settings.rate_limit_per_minute
        )
        if pending is None:
            raise Unauthenticated(MALFORMED)
        try:
            async with translate_errors():
                row = await pending.call.script(
                    keys=list(pending.call.keys), args=list(pending.call.args)
                )
        except StoreUnavailable as exc:
            verdict = Verdict(failures=(Failure.of(Reason.STATUS_UNAVAILABLE),))
            raise StatusUnavailable(exc.detail, verdict=verdict) from exc
        return self._admit(pending, pending.read(row))

    def _admit(self, pending: PendingAuthentication, client: Client | None) -> Client:
        if client is None:
            self._known.pop(pending.presented, None)
            raise Unauthenticated(NOT_ACCEPTED)
        bind_client(client.name)  # this request's log lines name who made it
        if Scope.VERIFY not in client.scopes:
            self._known.pop(pending.presented, None)
            raise InsufficientScope(f"This call needs the scope {Scope.VERIFY}.")
        return client
