"""Presentation requests (OpenID4VP) in Redis: the request, its single-use nonce, the result.

One hash per request, ``<prefix>:{vp:<id>}:request``, holds what the wallet is sent and what
the response endpoint checks (client, nonce, state, type, claim paths, purpose, expiry) and,
once the wallet has answered, the result. It never holds the presentation, and the result
holds only the claims the relying party asked for (:func:`service.core.openid4vp.judge`).

Life of a request, each step one script on the hash's slot, so it is atomic::

    pending ──answer (state matches, before expiry)──▶ answering ──▶ completed | failed

Moving to ``answering`` is what consumes the nonce: of two answers racing for one request,
exactly one passes; the other, and every later one, is told ``nonce_replayed``. The hash
lives until the request expires plus the result's lifetime, and once answered for the
result's lifetime from then: a relying party polling late still learns the request expired,
and results do not accumulate.

A finished answer is also published on ``<prefix>:{vp:<id>}:events``, so a long-poll or
event stream wakes at once instead of on its next look; the process's one subscriber
(:mod:`service.store.events`) passes it on to every waiter of that request.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import redis.asyncio as aioredis

from service.core.encoding import json_dumps, json_loads
from service.core.openid4vp import PresentationRequest
from service.store.connection import KeySpace, translate_errors
from service.store.events import EventHub, Watch

__all__ = ["REQUEST_ID", "Claim", "PresentationStore", "Status", "StoredRequest", "Watch"]

#: What :func:`service.core.openid4vp.new_secret` makes; anything else is not looked up.
REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9_-]{22}$")


class Status(StrEnum):
    PENDING = "pending"
    ANSWERING = "answering"
    COMPLETED = "completed"
    FAILED = "failed"


class Claim(StrEnum):
    """What claiming a request for an answer found."""

    OK = "ok"
    NOT_FOUND = "not_found"
    STATE_MISMATCH = "state_mismatch"
    REPLAYED = "replayed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class StoredRequest:
    request: PresentationRequest
    client: str
    status: Status
    result: dict[str, Any] | None = None
    #: SHA-256 (hex) of the same-device flow's response code, once the wallet answered.
    response_code_hash: str | None = None


# State first: an answer for another request says nothing about this one. Then replay before
# expiry, so a second answer is called a replay whenever it comes.
_CLAIM = """
local f = redis.call('HMGET', KEYS[1], 'status', 'state', 'expires_ms')
if not f[1] then return {'not_found'} end
if f[2] ~= ARGV[1] then return {'state_mismatch'} end
if f[1] ~= 'pending' then return {'replayed'} end
if tonumber(ARGV[2]) >= tonumber(f[3]) then return {'expired'} end
redis.call('HSET', KEYS[1], 'status', 'answering', 'answered_ms', ARGV[2])
return {'ok', redis.call('HGETALL', KEYS[1])}
"""

_FINISH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'answering' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[2])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'response_code', ARGV[5]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _from_fields(request_id: str, raw: dict[Any, Any]) -> StoredRequest:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    request = PresentationRequest(
        request_id=request_id,
        response_uri=fields["response_uri"],
        nonce=fields["nonce"],
        state=fields["state"],
        vct=fields["vct"],
        paths=tuple(tuple(p) for p in json_loads(fields["paths"])),
        purpose=fields["purpose"],
        client_name=fields["client_name"],
        issued_ms=int(fields["issued_ms"]),
        expires_ms=int(fields["expires_ms"]),
        **_options(fields.get("options")),
    )
    result = json_loads(fields["result"]) if "result" in fields else None
    return StoredRequest(
        request=request,
        client=fields["client"],
        status=Status(fields["status"]),
        result=result,
        response_code_hash=fields.get("response_code"),
    )


def _options(text: str | None) -> dict[str, Any]:
    """The request's protocol choices (prefix, modes, the ephemeral decryption key...);
    requests stored before they existed read as unsigned ``direct_post`` ones."""
    if not text:
        return {}
    options = json_loads(text)
    for name in ("expected_origins", "trusted_authorities"):
        options[name] = tuple(options.get(name, ()))
    return dict(options)


def options_of(request: PresentationRequest) -> str:
    return json_dumps(
        {
            "signed_client_id": request.signed_client_id,
            "response_mode": request.response_mode,
            "by_reference": request.by_reference,
            "request_uri_method": request.request_uri_method,
            # The ephemeral key lives exactly as long as the request's record: the response
            # can only be decrypted while the request can be answered or read.
            "encryption_key": dict(request.encryption_key) if request.encryption_key else None,
            "redirect_uri": request.redirect_uri,
            "expected_origins": list(request.expected_origins),
            "trusted_authorities": list(request.trusted_authorities),
        }
    )


class PresentationStore:
    def __init__(self, redis: aioredis.Redis, keys: KeySpace, events: EventHub) -> None:
        self._redis = redis
        self._keys = keys
        self._events = events
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)

    async def create(self, request: PresentationRequest, *, client: str, keep_ms: int) -> None:
        key = self._keys.presentation_request(request.request_id)
        async with translate_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "client": client,
                    "status": Status.PENDING.value,
                    "response_uri": request.response_uri,
                    "nonce": request.nonce,
                    "state": request.state,
                    "vct": request.vct,
                    "paths": json_dumps([list(p) for p in request.paths]),
                    "purpose": request.purpose,
                    "client_name": request.client_name,
                    "issued_ms": request.issued_ms,
                    "expires_ms": request.expires_ms,
                    "options": options_of(request),
                },
            )
            pipe.pexpireat(key, request.expires_ms + keep_ms)
            await pipe.execute()

    async def get(self, request_id: str) -> StoredRequest | None:
        if not REQUEST_ID.fullmatch(request_id):
            return None
        async with translate_errors():
            raw = await self._redis.hgetall(self._keys.presentation_request(request_id))
        return _from_fields(request_id, raw) if raw else None

    async def claim(
        self, request_id: str, *, state: str, now_ms: int
    ) -> tuple[Claim, StoredRequest | None]:
        """Take the request's one answer: consumes its nonce when the answer may be made."""
        if not REQUEST_ID.fullmatch(request_id):
            return Claim.NOT_FOUND, None
        async with translate_errors():
            reply = await self._claim(
                keys=[self._keys.presentation_request(request_id)], args=[state, now_ms]
            )
        found = Claim(_text(reply[0]))
        if found is not Claim.OK:
            return found, None
        flat = reply[1]
        return found, _from_fields(request_id, dict(zip(flat[::2], flat[1::2], strict=True)))

    async def finish(
        self,
        request_id: str,
        *,
        completed: bool,
        result: dict[str, Any],
        keep_ms: int,
        response_code_hash: str = "",
    ) -> bool:
        """Store the result of the answer being processed and wake the waiters."""
        status = Status.COMPLETED if completed else Status.FAILED
        async with translate_errors():
            done = await self._finish(
                keys=[self._keys.presentation_request(request_id)],
                args=[
                    status.value,
                    json_dumps(result),
                    keep_ms,
                    self._keys.presentation_events(request_id),
                    response_code_hash,
                ],
            )
        return bool(done)

    def watch(self, request_id: str) -> contextlib.AbstractAsyncContextManager[Watch]:
        """Wait for the request's answer (service.store.events): enter *before* reading the
        state, so an answer that lands in between is either in the state read or wakes the
        watch."""
        return self._events.watch(self._keys.presentation_events(request_id))
