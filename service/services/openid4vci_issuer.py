"""Issuance to a wallet over OpenID4VCI 1.0, pre-authorized code flow: the protocol checks of
:mod:`service.core.openid4vci` joined to the offer store and the :class:`Issuer`.

1. An issuing app makes an offer (``create_offer``): the claims are checked exactly as for
   ``POST /v1/credentials`` and parked in Redis with the offer, never longer than the offer
   lives. The app shows the QR code and gives the citizen the transaction code apart.
2. The wallet fetches the offer and the metadata, redeems the code (``token``), fetches a
   c_nonce (``nonce``) and asks for the credential with a key proof (``credential``).
3. The claims leave Redis in the same atomic step that uses the access token, the credential
   is signed and bound to the proof's key, and the offer keeps only the credential's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.core import openid4vci as vci
from service.core.encoding import json_dumps
from service.errors import (
    CredentialRequestDenied,
    InvalidCredentialRequest,
    InvalidEncryptionParameters,
    InvalidGrant,
    InvalidNonce,
    InvalidProof,
    InvalidRequest,
    InvalidToken,
    InvalidTokenRequest,
    OAuthError,
    OfferNotFound,
    UnknownCredentialConfiguration,
    UnsupportedGrantType,
)
from service.keyring.offer_claims import OfferClaimsSealer, UnsealError
from service.services.issuing import IssuedCredential, Issuer
from service.services.qr import QrImages, render
from service.settings import Settings
from service.store.offers import (
    NonceStore,
    OfferStatus,
    OfferStore,
    RedeemOutcome,
    new_secret,
    split_secret,
)

__all__ = ["REQUEST_ERRORS", "CreatedOffer", "IssuanceResult", "WalletIssuance", "tx_code_hash"]

log = logging.getLogger("thiqa.openid4vci")
#: A transaction code is digits typed on a phone; anything longer is not one of ours.
_MAX_TX_CODE = 64

#: The core's refusals of a Credential Request, as the errors the wallet is answered with.
REQUEST_ERRORS: dict[vci.RequestProblem, type[OAuthError]] = {
    vci.RequestProblem.INVALID_CREDENTIAL_REQUEST: InvalidCredentialRequest,
    vci.RequestProblem.UNKNOWN_CREDENTIAL_CONFIGURATION: UnknownCredentialConfiguration,
    vci.RequestProblem.INVALID_ENCRYPTION_PARAMETERS: InvalidEncryptionParameters,
    vci.RequestProblem.INVALID_PROOF: InvalidProof,
}


@dataclass(frozen=True, slots=True)
class CreatedOffer:
    offer_id: str
    document: dict[str, Any]
    credential_offer_uri: str
    offer_uri: str
    tx_code: str | None
    expires_at: int
    qr: QrImages


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class IssuanceResult:
    issued: IssuedCredential
    #: The API client that made the offer, for the audit trail.
    client: str


def tx_code_hash(code: str, tx_code: str) -> str:
    """The transaction code is kept only hashed, salted with its own pre-authorized code so
    equal PINs of two offers hash differently."""
    return hashlib.sha256(f"{code}\n{tx_code}".encode()).hexdigest()


class WalletIssuance:
    def __init__(
        self,
        *,
        settings: Settings,
        issuer: Issuer,
        offers: OfferStore,
        nonces: NonceStore,
        signing_algs: Callable[[], list[str]],
        sealer: OfferClaimsSealer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sealer = sealer
        self._issuer = issuer
        self._offers = offers
        self._nonces = nonces
        self._signing_algs = signing_algs
        self._clock = clock

    @property
    def issuer_id(self) -> str:
        return self._settings.issuer_url

    def _now(self) -> int:
        return int(self._clock())

    # -- documents ---------------------------------------------------------------------------

    def issuer_metadata(self, type_metadata: Mapping[str, Any]) -> dict[str, Any]:
        return vci.issuer_metadata(
            issuer=self.issuer_id,
            vct=self._settings.national_id_vct,
            signing_algs=self._signing_algs(),
            type_metadata=type_metadata,
        )

    def authorization_server_metadata(self) -> dict[str, Any]:
        return vci.authorization_server_metadata(issuer=self.issuer_id)

    # -- the issuing app ---------------------------------------------------------------------

    async def create_offer(
        self,
        claims: Mapping[str, Any],
        *,
        client: str,
        vct: str | None = None,
        valid_for_days: int | None = None,
        tx_code: bool = True,
    ) -> CreatedOffer:
        settings = self._settings
        checked = self._issuer.check(claims, vct=vct, valid_for_days=valid_for_days)
        offer_id = OfferStore.new_offer_id()
        code = new_secret(offer_id)
        pin = (
            "".join(secrets.choice(string.digits) for _ in range(settings.tx_code_length))
            if tx_code
            else None
        )
        document = vci.credential_offer(
            issuer=self.issuer_id,
            pre_authorized_code=code,
            tx_code_length=settings.tx_code_length if pin is not None else None,
        )
        expires_at = self._now() + settings.offer_ttl_seconds
        await self._offers.create(
            offer_id,
            code=code,
            tx_hash=tx_code_hash(code, pin) if pin is not None else "",
            attempts=settings.tx_code_max_attempts,
            document=document,
            # Sealed before Redis sees them: its append-only file and snapshots outlive the
            # offer (service.keyring.offer_claims).
            sealed_claims=self._sealer.seal(
                json_dumps(
                    {
                        "claims": checked.claims,
                        "vct": checked.vct,
                        "valid_for_days": checked.valid_for_days,
                        "client": client,
                    }
                ).encode("utf-8"),
                offer_id=offer_id,
            ),
            expires_at=expires_at,
            client=client,
        )
        reference = f"{self.issuer_id}/credential-offers/{offer_id}"
        link = vci.offer_uri(reference)
        return CreatedOffer(
            offer_id=offer_id,
            document=document,
            credential_offer_uri=reference,
            offer_uri=link,
            tx_code=pin,
            expires_at=expires_at,
            # ~15 ms of pure-Python drawing: off the event loop, where verifications wait.
            qr=await asyncio.to_thread(render, link),
        )

    async def offer_status(self, offer_id: str, *, client: str) -> OfferStatus:
        """The offer as its own client sees it; to any other client it does not exist."""
        status = await self._offers.status(offer_id, now=self._now())
        if status is None or status.client != client:
            raise OfferNotFound()
        return status

    # -- the wallet --------------------------------------------------------------------------

    async def offer_document(self, offer_id: str) -> dict[str, Any]:
        document = await self._offers.document(offer_id, now=self._now())
        if document is None:
            raise OfferNotFound()
        return document

    async def token(self, form: Mapping[str, str]) -> TokenGrant:
        """The token endpoint, pre-authorized code grant only."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidTokenRequest("grant_type is required.")
        if grant_type != vci.PRE_AUTHORIZED_GRANT:
            raise UnsupportedGrantType()
        code = form.get("pre-authorized_code")
        if not code:
            raise InvalidTokenRequest("pre-authorized_code is required.")
        tx_code = form.get("tx_code") or None
        if tx_code is not None and len(tx_code) > _MAX_TX_CODE:
            raise InvalidGrant("The transaction code is wrong.")
        offer_id = split_secret(code)
        if offer_id is None:
            raise InvalidGrant()
        token = new_secret(offer_id)
        now = self._now()
        redemption = await self._offers.redeem(
            code,
            tx_code_hash(code, tx_code) if tx_code is not None else "",
            token=token,
            token_ttl=self._settings.access_token_ttl_seconds,
            now=now,
        )
        outcome = redemption.outcome
        if outcome is RedeemOutcome.GRANTED:
            return TokenGrant(
                access_token=token, expires_in=max(1, redemption.token_expires_at - now)
            )
        if outcome is RedeemOutcome.TX_MISSING:
            raise InvalidTokenRequest("This offer requires its transaction code.")
        if outcome is RedeemOutcome.TX_UNEXPECTED:
            raise InvalidTokenRequest("This offer has no transaction code.")
        if outcome is RedeemOutcome.TX_WRONG:
            log.warning(
                "wrong transaction code for an offer; %d guesses left", redemption.guesses_left
            )
            raise InvalidGrant("The transaction code is wrong.")
        if outcome is RedeemOutcome.BURNT:
            log.warning("credential offer deleted after too many wrong transaction codes")
            raise InvalidGrant("Too many wrong transaction codes: the offer is withdrawn.")
        if outcome is RedeemOutcome.REUSED:
            log.warning("pre-authorized code used twice: offer and access token withdrawn")
            raise InvalidGrant("The pre-authorized code was already used: the offer is withdrawn.")
        raise InvalidGrant()

    async def nonce(self) -> str:
        return await self._nonces.new(ttl=self._settings.c_nonce_ttl_seconds)

    async def credential(self, access_token: str | None, body: Any) -> IssuanceResult:
        """The credential endpoint: check the token, the request and the proof, use the
        nonce, take the claims (using the token up), sign, and forget the claims."""
        settings = self._settings
        now = self._now()
        # Read only: a wallet whose proof is refused may retry with a new nonce.
        if access_token is None or not await self._offers.token_valid(access_token, now=now):
            raise InvalidToken()
        try:
            request = vci.parse_credential_request(body)
            proof = vci.check_proof(
                request.proof,
                audience=self.issuer_id,
                now=now,
                clock_skew=settings.clock_skew_seconds,
                max_age=settings.c_nonce_ttl_seconds,
            )
        except vci.CredentialRequestError as exc:
            raise REQUEST_ERRORS[exc.error](exc.description) from None
        # A key ring that cannot sign is refused before the nonce and the offer are used up.
        self._issuer.require_signing_key()
        # Last of the proof checks, so a refused proof never costs the wallet its nonce.
        if not await self._nonces.use(proof.nonce):
            raise InvalidNonce()
        taken = await self._offers.take(access_token, now=self._now())
        if taken is None:  # another request used the token meanwhile, or it just expired
            raise InvalidToken()
        offer_id, sealed = taken
        try:
            parked = json.loads(self._sealer.open(sealed, offer_id=offer_id))
        except UnsealError as exc:
            # Its key was dropped by a rotation, or the value was altered in Redis: the offer
            # fails, as when signing fails; nothing is issued from claims that do not open.
            with contextlib.suppress(Exception):
                await self._offers.finish(
                    offer_id, credential_id=None, keep_seconds=settings.offer_ttl_seconds
                )
            raise CredentialRequestDenied() from exc
        try:
            issued = await self._issuer.issue(
                parked["claims"],
                vct=parked["vct"],
                holder_jwk=proof.jwk,
                valid_for_days=parked["valid_for_days"],
                client=str(parked.get("client", "")),
            )
        except BaseException as exc:
            # The claims are gone already; the offer records that it failed. If even that
            # fails, the original error is the one to report.
            with contextlib.suppress(Exception):
                await self._offers.finish(
                    offer_id, credential_id=None, keep_seconds=settings.offer_ttl_seconds
                )
            if isinstance(exc, InvalidRequest):
                # Checked when the offer was made; a rule that changed since (a date that
                # moved past midnight) is the issuer's refusal, not a malformed request.
                raise CredentialRequestDenied() from exc
            raise
        await self._offers.finish(
            offer_id, credential_id=issued.credential_id, keep_seconds=settings.offer_ttl_seconds
        )
        return IssuanceResult(issued=issued, client=str(parked.get("client", "")))
