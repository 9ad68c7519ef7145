"""Connecting to Redis, naming keys, and translating Redis failures.

Keys are named ``<prefix>:{<tag>}:<rest>``. Everything one command or script touches shares
the ``{tag}``, so the store runs unchanged on Redis Cluster, where a hash tag decides the slot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.errors import StoreUnavailable

__all__ = ["KeySpace", "connect", "translate_errors"]

#: Time allowed for one Redis command: verification must answer in milliseconds or fail
#: closed, never hang.
SOCKET_TIMEOUT = 2.0


def connect(url: str) -> aioredis.Redis:
    """A pooled client; nothing is sent until the first command."""
    return aioredis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=15,
        decode_responses=False,
    )


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        # Said as what it is: this also reaches the client commands, which use no status list.
        raise StoreUnavailable("Redis, where Thiqa keeps its data, cannot answer.") from exc


class KeySpace:
    """Names every Redis key Thiqa uses."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # Status lists: bits, allocation bitmap, metadata and credential records share a tag.
    def status_bits(self, list_id: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:bits"

    def status_used(self, list_id: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:used"

    def status_meta(self, list_id: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:meta"

    def credential(self, list_id: str, serial: str) -> str:
        return f"{self.prefix}:{{sl:{list_id}}}:cred:{serial}"

    def current_list(self) -> str:
        return f"{self.prefix}:{{lists}}:current"

    def all_lists(self) -> str:
        return f"{self.prefix}:{{lists}}:all"

    # Status lists of other issuers, cached no longer than their ttl; data and bits together.
    def remote_list_data(self, uri_hash: str) -> str:
        return f"{self.prefix}:{{rsl:{uri_hash}}}:data"

    def remote_list_bits(self, uri_hash: str) -> str:
        return f"{self.prefix}:{{rsl:{uri_hash}}}:bits"

    # Clients: looked up by key id on every request; listed by name.
    def api_key(self, key_id: str) -> str:
        return f"{self.prefix}:{{clients}}:key:{key_id}"

    def client(self, name: str) -> str:
        return f"{self.prefix}:{{clients}}:client:{name}"

    def rate_window(self, key_id: str, window: int) -> str:
        return f"{self.prefix}:{{clients}}:rate:{key_id}:{window}"

    def client_names(self) -> str:
        return f"{self.prefix}:{{clients}}:names"

    # The audit trail: one stream in a slot of its own, never written by a status script.
    def audit_stream(self) -> str:
        return f"{self.prefix}:{{audit}}:stream"

    # OpenID4VCI: one hash per credential offer (code, transaction code, access token and,
    # until issuance, the claims), so each step is one script on one slot; c_nonces apart.
    def credential_offer(self, offer_id: str) -> str:
        return f"{self.prefix}:{{vci:{offer_id}}}:offer"

    def c_nonce(self, nonce: str) -> str:
        return f"{self.prefix}:{{cn:{nonce}}}:nonce"

    def c_nonce_secret(self) -> str:
        return f"{self.prefix}:{{cn}}:secret"

    # OpenID4VP: one hash per presentation request (request, nonce, then the result), and the
    # channel its waiters listen on for the answer.
    def presentation_request(self, request_id: str) -> str:
        return f"{self.prefix}:{{vp:{request_id}}}:request"

    def presentation_events(self, request_id: str) -> str:
        return f"{self.prefix}:{{vp:{request_id}}}:events"
