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

import dataclasses
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from service.core.encoding import json_dumps
from service.core.jwe import EncryptionError, decrypt_response, new_encryption_key
from service.core.openid4vp import (
    DC_API_MODES,
    DC_API_PROTOCOL_SIGNED,
    DC_API_PROTOCOL_UNSIGNED,
    MAX_EXPECTED_ORIGINS,
    MAX_TRUSTED_AUTHORITIES,
    PREFIXES,
    REDIRECT_URI,
    RESPONSE_MODES,
    X509_HASH,
    X509_SAN_DNS,
    ClaimPath,
    Outcome,
    PresentationRequest,
    RequestError,
    VpTokenError,
    check_paths,
    check_purpose,
    judge,
    new_secret,
    origin_audience,
    read_vp_token,
    wallet_error_code,
    wallet_uri,
)
from service.core.reasons import Failure, Reason
from service.core.verify import Verdict
from service.core.x509 import certificate_hash
from service.errors import (
    AccessCertificateMissing,
    DecryptionFailed,
    DirectPostError,
    EncryptionRequired,
    InvalidRequest,
    MalformedResponse,
    NonceReplayed,
    OriginMismatch,
    PresentationRejected,
    PresentationRequestAnswered,
    PresentationRequestExpired,
    PresentationRequestNotFound,
    ResponseCodeMismatch,
    ResponseStoreUnavailable,
    ResponseTooLarge,
    ResponseTooLate,
    StateMismatch,
    StatusUnavailable,
    StoreUnavailable,
    UnknownPresentationRequest,
    UnsupportedCredentialType,
    UnsupportedEncryption,
)
from service.keyring.certificates import AccessCredential
from service.services.stream_limits import StreamLimits
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
    #: None for a request passed by value or through the Digital Credentials API.
    request_uri: str | None
    #: The ``openid4vp://`` link for the QR code; None for a Digital Credentials API request.
    wallet_uri: str | None
    #: What the relying party's page hands to ``navigator.credentials.get`` (DC API only).
    dc_api_request: dict[str, Any] | None = None


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


#: Why an encrypted answer could not be opened (service.core.jwe's codes).
_ENCRYPTION_ERRORS: Final[dict[str, type[DirectPostError]]] = {
    "response_too_large": ResponseTooLarge,
    "malformed_response": MalformedResponse,
    "unsupported_encryption": UnsupportedEncryption,
    "decryption_failed": DecryptionFailed,
}

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
        access: AccessCredential | None = None,
        own_authority: str | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        #: Signs Request Objects; its certificate names Thiqa as the relying party.
        self._access = access
        #: This issuer's credentials are verified by kid, not through x5c; they come from
        #: the authority of its own root all the same.
        self._own_authority = own_authority
        self._store = store
        self._verifier = verifier
        self._clock = clock
        self._monotonic = monotonic
        self._keep_ms = settings.presentation_result_ttl_seconds * 1000
        #: Open long-polls and event streams, capped per client and in total.
        self.streams = StreamLimits(
            per_client=settings.max_streams_per_client, total=settings.max_streams
        )

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
        client_id_prefix: str = X509_HASH,
        by_reference: bool = True,
        request_uri_method: str = "get",
        response_mode: str = "direct_post.jwt",
        redirect_uri: str | None = None,
        expected_origins: Sequence[str] = (),
        trusted_authorities: Sequence[str] = (),
    ) -> Created:
        """A new request. The default is HAIP 1.0's: ``x509_hash``, signed, by reference,
        answered encrypted (``direct_post.jwt``); each choice can be made otherwise."""
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
        self._check_choices(
            client_id_prefix=client_id_prefix,
            by_reference=by_reference,
            request_uri_method=request_uri_method,
            response_mode=response_mode,
            redirect_uri=redirect_uri,
            expected_origins=expected_origins,
            trusted_authorities=trusted_authorities,
        )
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
            signed_client_id=self._client_id(client_id_prefix),
            response_mode=response_mode,
            by_reference=by_reference and response_mode not in DC_API_MODES,
            request_uri_method=request_uri_method,
            encryption_key=new_encryption_key() if response_mode.endswith(".jwt") else None,
            redirect_uri=redirect_uri,
            expected_origins=tuple(expected_origins),
            trusted_authorities=tuple(trusted_authorities),
        )
        await self._store.create(request, client=client, keep_ms=self._keep_ms)
        if request.dc_api:
            return Created(request, None, None, dc_api_request=self._dc_api_request(request))
        if request.by_reference:
            request_uri = self.request_uri(request_id)
            link = wallet_uri(request.client_id, request_uri, request_uri_method=request_uri_method)
            return Created(request, request_uri, link)
        if request.signed:
            link = wallet_uri(request.client_id, request=self._request_object(request))
        else:
            link = wallet_uri(request.client_id, parameters=request.parameters())
        return Created(request, None, link)

    def _check_choices(
        self,
        *,
        client_id_prefix: str,
        by_reference: bool,
        request_uri_method: str,
        response_mode: str,
        redirect_uri: str | None,
        expected_origins: Sequence[str],
        trusted_authorities: Sequence[str],
    ) -> None:
        if client_id_prefix not in PREFIXES:
            raise InvalidRequest(f"client_id_prefix must be one of {', '.join(PREFIXES)}.")
        if response_mode not in RESPONSE_MODES:
            raise InvalidRequest(f"response_mode must be one of {', '.join(RESPONSE_MODES)}.")
        if request_uri_method not in ("get", "post"):
            raise InvalidRequest("request_uri_method must be get or post.")
        dc_api = response_mode in DC_API_MODES
        if client_id_prefix == REDIRECT_URI and by_reference and not dc_api:
            # Wallets in the field (EUDI, OWF) accept this prefix only with every parameter
            # in the URL, and refuse unsigned Request Objects fetched by reference.
            raise InvalidRequest("a redirect_uri request can only be passed by value.")
        if client_id_prefix != REDIRECT_URI and self._access is None:
            raise AccessCertificateMissing()
        if dc_api and not expected_origins:
            raise InvalidRequest("a Digital Credentials API request needs expected_origins.")
        if not dc_api and expected_origins:
            raise InvalidRequest("expected_origins is for Digital Credentials API requests.")
        if dc_api and redirect_uri is not None:
            raise InvalidRequest("redirect_uri is for direct_post requests.")
        if len(expected_origins) > MAX_EXPECTED_ORIGINS or not all(
            _is_origin(o) for o in expected_origins
        ):
            raise InvalidRequest("expected_origins must be up to 8 origins (https://host[:port]).")
        if redirect_uri is not None and not _is_url(redirect_uri):
            raise InvalidRequest("redirect_uri must be an http(s) URL without a fragment.")
        if len(trusted_authorities) > MAX_TRUSTED_AUTHORITIES or not all(
            isinstance(a, str) and 1 <= len(a) <= 128 for a in trusted_authorities
        ):
            raise InvalidRequest("trusted_authorities must be up to 16 key identifiers.")

    def _client_id(self, prefix: str) -> str:
        if prefix == REDIRECT_URI:
            return ""
        assert self._access is not None  # checked by _check_choices
        if prefix == X509_HASH:
            return f"{X509_HASH}:{certificate_hash(self._access.leaf)}"
        return f"{X509_SAN_DNS}:{sorted(_san_dns(self._access))[0]}"

    def _request_object(self, request: PresentationRequest, wallet_nonce: str | None = None) -> str:
        signer = self._access.key if self._access is not None and request.signed else None
        return request.request_object(signer, wallet_nonce=wallet_nonce)

    def _dc_api_request(self, request: PresentationRequest) -> dict[str, Any]:
        """The argument of ``navigator.credentials.get({digital: {requests: [...]}})``."""
        if request.signed:
            return {
                "protocol": DC_API_PROTOCOL_SIGNED,
                "data": {"request": self._request_object(request)},
            }
        return {"protocol": DC_API_PROTOCOL_UNSIGNED, "data": request.parameters()}

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

    async def view(self, request_id: str, client: str, *, response_code: str | None = None) -> View:
        """The request's state, for the client that made it; anyone else learns nothing,
        not even that it exists. A same-device request's verdict is given only with the
        ``response_code`` the wallet handed to the citizen's browser (OpenID4VP 1.0 §13.3:
        a session that did not start the flow cannot read its result)."""
        stored = await self._store.get(request_id)
        if stored is None or stored.client != client:
            raise PresentationRequestNotFound()
        view = self._view(stored)
        if stored.request.redirect_uri is not None and view.verdict is not None:
            expected = stored.response_code_hash or ""
            given = _code_hash(response_code) if response_code else ""
            if not given or not hmac.compare_digest(given.encode(), expected.encode()):
                if response_code:
                    raise ResponseCodeMismatch()
                return View(view.request_id, view.state, None, view.expires_at, view.settles_ms)
        return view

    def _until(self, view: View, deadline: float) -> float:
        """Seconds to sleep before the next look: news, the deadline or the expiry first."""
        to_settle = (view.settles_ms - self._now_ms()) / 1000 + 0.005
        return min(deadline - self._monotonic(), to_settle, _LOOK_EVERY)

    async def wait(
        self, request_id: str, client: str, seconds: float, *, response_code: str | None = None
    ) -> View:
        """The state once it is final, or after ``seconds``, whichever comes first."""
        view = await self.view(request_id, client, response_code=response_code)
        if view.final or seconds <= 0:
            return view
        deadline = self._monotonic() + min(seconds, MAX_WAIT_SECONDS)
        with self.streams.open(client):
            async with self._store.watch(request_id) as watch:
                view = await self.view(request_id, client, response_code=response_code)
                while not view.final:
                    pause = self._until(view, deadline)
                    if pause <= 0:
                        break
                    await watch.wait(pause)
                    view = await self.view(request_id, client, response_code=response_code)
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

    async def request_object_for_wallet(
        self, request_id: str, *, wallet_nonce: str | None = None
    ) -> tuple[PresentationRequest, str]:
        """The Request Object served at ``request_uri`` (signed for the X.509 prefixes);
        ``wallet_nonce`` from a ``request_uri_method=post`` fetch is echoed inside it."""
        request = await self.request_for_wallet(request_id)
        return request, self._request_object(request, wallet_nonce)

    async def request_for_wallet(self, request_id: str) -> PresentationRequest:
        stored = await self._store.get(request_id)
        # Only requests passed by reference are served: one passed by value (every
        # redirect_uri one) or through the DC API has no request_uri.
        if stored is None or not stored.request.by_reference:
            raise PresentationRequestNotFound()
        if stored.status is not Status.PENDING:
            raise PresentationRequestAnswered()
        if self._now_ms() >= stored.request.expires_ms:
            raise PresentationRequestExpired()
        return stored.request

    async def answer(
        self, request_id: str, form: Mapping[str, str], *, spent: SpentRequest
    ) -> dict[str, Any]:
        """Process an Authorization Response sent by ``direct_post`` or ``direct_post.jwt``:
        returns the body to answer with when it is accepted (or is the wallet's own error
        response, processed); raises a :class:`DirectPostError` otherwise. ``spent`` is
        called once the request is spent.

        An encrypted request takes only an encrypted answer (``response``, a JWE to its own
        ephemeral key). It is decrypted before the request is claimed, so a stranger's junk
        spends nothing."""
        try:
            stored = await self._store.get(request_id)
        except StoreUnavailable:
            raise ResponseStoreUnavailable("Try again shortly.") from None
        if stored is not None and stored.request.dc_api:
            raise UnknownPresentationRequest()  # answered through the relying party only
        if stored is not None and stored.request.encrypted:
            form = self._open(stored.request, form)
        elif "response" in form:
            raise UnsupportedEncryption("This request takes an unencrypted answer.")
        return await self._take(request_id, form, audience=None, spent=spent)

    async def answer_dc_api(
        self,
        request_id: str,
        client: str,
        *,
        origin: str,
        data: Mapping[str, Any],
        spent: SpentRequest,
    ) -> dict[str, Any]:
        """The result of ``navigator.credentials.get``, posted by the relying party's page
        with the origin the browser reported. The KB-JWT must name ``origin:<origin>``."""
        stored = await self._store.get(request_id)
        if stored is None or stored.client != client or not stored.request.dc_api:
            raise PresentationRequestNotFound()
        request = stored.request
        if origin not in request.expected_origins:
            raise OriginMismatch()
        form: dict[str, str] = {}
        for name in ("response", "vp_token", "error"):
            value = data.get(name)
            if isinstance(value, str):
                form[name] = value
            elif isinstance(value, dict) and name == "vp_token":
                form[name] = json_dumps(value)
        if request.encrypted:
            form = self._open(request, form)
        elif "response" in form:
            raise UnsupportedEncryption("This request takes an unencrypted answer.")
        # The DC API carries no state; the relying party's own session stands for it.
        form = {**form, "state": request.state}
        return await self._take(request_id, form, audience=origin_audience(origin), spent=spent)

    def _open(self, request: PresentationRequest, form: Mapping[str, str]) -> dict[str, str]:
        """The parameters of an encrypted answer."""
        if "response" not in form:
            if "error" in form and "vp_token" not in form:
                return dict(form)  # a wallet's error is sent in the clear (1.0 §8.3)
            raise EncryptionRequired()
        assert request.encryption_key is not None
        try:
            inner = decrypt_response(form["response"], private_jwk=request.encryption_key)
        except EncryptionError as exc:
            raise _ENCRYPTION_ERRORS[exc.code](f"{exc}.") from None
        opened: dict[str, str] = {}
        for name, value in inner.items():
            if name == "vp_token" and isinstance(value, dict | list):
                opened[name] = json_dumps(value)
            elif isinstance(value, str):
                opened[name] = value
        opened.setdefault("state", form.get("state", ""))
        return opened

    async def _take(
        self,
        request_id: str,
        form: Mapping[str, str],
        *,
        audience: str | None,
        spent: SpentRequest,
    ) -> dict[str, Any]:
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
                        presentation, nonce=request.nonce, audience=audience or request.client_id
                    )
                except StatusUnavailable as exc:
                    unavailable = True
                    verdict = exc.verdict
                except StoreUnavailable:
                    unavailable = True
                    verdict = Verdict(failures=(Failure.of(Reason.STATUS_UNAVAILABLE),))
                if (
                    verdict.anchor_aki is None
                    and verdict.issuer == self._settings.issuer_url
                    and self._own_authority is not None
                ):
                    verdict = dataclasses.replace(verdict, anchor_aki=self._own_authority)
                outcome = judge(
                    verdict,
                    vct=request.vct,
                    paths=request.paths,
                    trusted_authorities=request.trusted_authorities,
                )
        # Same-device flow: the citizen's browser comes back with this code, and only a
        # reader holding it sees the result.
        response_code = new_secret() if request.redirect_uri is not None else None
        try:
            await self._store.finish(
                request_id,
                completed=outcome.valid,
                result=outcome.body(),
                keep_ms=self._keep_ms,
                response_code_hash=_code_hash(response_code) if response_code else "",
            )
        except StoreUnavailable:
            unavailable = True
        spent(outcome, stored.client)
        if unavailable:
            raise ResponseStoreUnavailable()
        if "vp_token" in form and not outcome.valid:
            raise PresentationRejected(errors=outcome.body()["errors"])
        # Accepted; or the wallet's error response, processed (1.0, direct_post).
        if response_code is not None:
            return {"redirect_uri": f"{request.redirect_uri}#response_code={response_code}"}
        return {}


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _is_origin(value: object) -> bool:
    from urllib.parse import urlsplit

    if not isinstance(value, str) or len(value) > 256:
        return False
    parts = urlsplit(value)
    return (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and parts.path == ""
        and not parts.query
        and not parts.fragment
        and "@" not in parts.netloc
    )


def _is_url(value: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    return (
        len(value) <= 512
        and parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and not parts.fragment
        and "@" not in parts.netloc
    )


def _san_dns(access: AccessCredential) -> set[str]:
    from cryptography import x509

    san = access.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))
