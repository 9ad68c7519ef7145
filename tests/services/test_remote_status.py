"""Status of another issuer's credential: a status URI the trusted issuer signed but that
cannot be fetched as written is an invalid status reference, never an exception (a 500)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis

from service.core.credential import StatusReference
from service.core.keys import generate_signing_key
from service.core.reasons import Reason
from service.core.verify import TrustedIssuer
from service.services.remote_status import RemoteStatus, StatusLookupFailed
from service.settings import Settings
from service.store.connection import KeySpace, connect
from service.store.remote_lists import RemoteListCache
from tests.store.helpers import keys_under, url_of

HOST = "127.0.0.1:9"
KEY = generate_signing_key("ES256")
ISSUER = TrustedIssuer(
    identifier="https://other.example",
    keys={KEY.kid: KEY.verification_key()},
    types=frozenset({"https://other.example/pid"}),
    status_hosts=frozenset({HOST}),
)


def _look_up(settings: Settings, uri: str) -> StatusLookupFailed:
    async def go() -> StatusLookupFailed:
        client = connect(url_of(settings))
        http = httpx.AsyncClient(timeout=2, follow_redirects=False, trust_env=False)
        remote = RemoteStatus(
            cache=RemoteListCache(client, KeySpace(settings.redis_prefix)),
            http=http,
            max_bytes=4096,
            max_cache_seconds=60,
            clock_skew=60,
        )
        try:
            with pytest.raises(StatusLookupFailed) as raised:
                await remote.status_of(ISSUER, StatusReference(uri=uri, idx=0))
            return raised.value
        finally:
            await http.aclose()
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    "uri",
    [
        f"http://{HOST}/lists/1\x00",  # httpx.InvalidURL, which is not an httpx.HTTPError
        f"http://{HOST}/lists/\x7f",
        "http://[::1/lists/1",  # urlsplit raises ValueError
    ],
)
def test_unusable_status_uri_is_an_invalid_reference(
    settings: Settings, redis_client: redis.Redis, uri: str
) -> None:
    failed = _look_up(settings, uri)
    assert failed.failure.reason is Reason.INVALID_STATUS_REFERENCE
    assert keys_under(redis_client, settings.redis_prefix) == set()  # nothing cached
