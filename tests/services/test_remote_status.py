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


# --- bounded in time, size and freshness; only public addresses ---------------------------

import http.server  # noqa: E402 - the harness below is for these tests only
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Any  # noqa: E402

from service.core.status_list import StatusValue  # noqa: E402
from service.core.status_token import sign_status_list, status_list_claims  # noqa: E402


class _Harness(http.server.ThreadingHTTPServer):
    """A status-list server on 127.0.0.1: serves ``tokens[path]``, or drips ``drip`` bytes
    one a second; records what it was asked and how much it sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tokens: dict[str, bytes] = {}
        self.drip: int = 0
        self.requests: list[dict[str, str]] = []
        self.dripped = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Harness

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append({"path": self.path, "host": self.headers.get("Host", "")})
        if self.server.drip:
            self.send_response(200)
            self.send_header("Content-Length", str(self.server.drip))
            self.end_headers()
            try:
                for _ in range(self.server.drip):
                    self.wfile.write(b"e")
                    self.wfile.flush()
                    self.server.dripped += 1
                    time.sleep(1)
            except OSError:
                return  # the client gave up: what this test wants
            return
        body = self.server.tokens.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/statuslist+jwt")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def harness() -> Iterator[_Harness]:
    server = _Harness()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _token(
    uri: str, data: bytes, *, iat: int | None = None, exp: int | None = 0, ttl: int = 60
) -> bytes:
    now = int(time.time())
    claims = status_list_claims(
        data,
        uri=uri,
        issuer=ISSUER.identifier,
        now=now if iat is None else iat,
        ttl=ttl,
        lifetime=3600,
    )
    if exp is None:
        del claims["exp"]
    elif exp:
        claims["exp"] = exp
    return sign_status_list(claims, KEY).encode()


def _issuer(*hosts: str, private: bool = True) -> TrustedIssuer:
    return replace(ISSUER, status_hosts=frozenset(hosts), private_status_hosts=private)


def _remote(settings: Settings, **limits: Any) -> Any:
    """Runs lookups on one RemoteStatus (one event loop, one Redis client)."""

    def run(*lookups: tuple[TrustedIssuer, str, int]) -> list[StatusValue | Reason]:
        async def go() -> list[StatusValue | Reason]:
            client = connect(url_of(settings))
            http = httpx.AsyncClient(timeout=30, follow_redirects=False, trust_env=False)
            options = {
                "max_bytes": 1 << 20,
                "max_cache_seconds": 60,
                "clock_skew": 60,
                "allow_http": True,
                **limits,
            }
            remote = RemoteStatus(
                cache=RemoteListCache(client, KeySpace(settings.redis_prefix)),
                http=http,
                **options,
            )
            answers: list[StatusValue | Reason] = []
            try:
                for issuer, uri, idx in lookups:
                    try:
                        answers.append(
                            await remote.status_of(issuer, StatusReference(uri=uri, idx=idx))
                        )
                    except StatusLookupFailed as failed:
                        answers.append(failed.failure.reason)
            finally:
                await http.aclose()
                await client.aclose()
            return answers

        return asyncio.run(go())

    return run


def test_an_http_status_uri_is_refused_unless_http_is_allowed(
    settings: Settings, redis_client: redis.Redis, harness: _Harness
) -> None:
    uri = f"http://{harness.host}/lists/1"
    harness.tokens["/lists/1"] = _token(uri, b"\x00" * 16)
    issuer = _issuer(harness.host)
    assert _remote(settings, allow_http=False)((issuer, uri, 0)) == [
        Reason.INVALID_STATUS_REFERENCE
    ]
    assert harness.requests == []  # never fetched
    assert _remote(settings, allow_http=True)((issuer, uri, 0)) == [StatusValue.VALID]


@pytest.mark.slow
def test_a_slow_drip_server_cannot_hold_a_lookup_past_the_deadline(
    settings: Settings, redis_client: redis.Redis, harness: _Harness
) -> None:
    uri = f"http://{harness.host}/lists/1"
    harness.drip = 30  # one byte a second: each read is well within any read timeout
    answers = _remote(settings, timeout=2)((_issuer(harness.host), uri, 0))
    assert answers == [Reason.STATUS_UNAVAILABLE]
    assert harness.dripped < 10  # cut off at the deadline, not at the end of the drip
    assert keys_under(redis_client, settings.redis_prefix) == set()


def test_a_list_inflating_past_the_cap_is_refused_and_not_cached(
    settings: Settings, redis_client: redis.Redis, harness: _Harness
) -> None:
    uri = f"http://{harness.host}/lists/1"
    harness.tokens["/lists/1"] = _token(uri, b"\x00" * (64 * 1024))  # a few hundred bytes
    assert len(harness.tokens["/lists/1"]) < 1024
    answers = _remote(settings, max_inflated_bytes=16 * 1024)((_issuer(harness.host), uri, 0))
    assert answers == [Reason.STATUS_UNAVAILABLE]
    assert keys_under(redis_client, settings.redis_prefix) == set()


def test_a_list_without_exp_must_be_recent(
    settings: Settings, redis_client: redis.Redis, harness: _Harness
) -> None:
    old, recent = f"http://{harness.host}/lists/old", f"http://{harness.host}/lists/recent"
    now = int(time.time())
    harness.tokens["/lists/old"] = _token(old, b"\x00" * 16, iat=now - 400 * 86_400, exp=None)
    harness.tokens["/lists/recent"] = _token(recent, b"\x00" * 16, iat=now - 60, exp=None)
    issuer = _issuer(harness.host)
    assert _remote(settings, max_age_seconds=86_400)((issuer, old, 0), (issuer, recent, 0)) == [
        Reason.STATUS_UNAVAILABLE,
        StatusValue.VALID,
    ]


def test_a_list_older_than_the_newest_seen_is_refused(
    settings: Settings, redis_client: redis.Redis, harness: _Harness
) -> None:
    uri = f"http://{harness.host}/lists/1"
    now = int(time.time())
    issuer = _issuer(harness.host)
    look_up = _remote(settings, max_cache_seconds=0)  # every lookup fetches
    harness.tokens["/lists/1"] = _token(uri, b"\x01" + b"\x00" * 15, iat=now)  # revoked
    assert look_up((issuer, uri, 0)) == [StatusValue.INVALID]
    # The list from before the revocation, replayed: refused, never "valid".
    harness.tokens["/lists/1"] = _token(uri, b"\x00" * 16, iat=now - 100)
    assert look_up((issuer, uri, 0)) == [Reason.STATUS_UNAVAILABLE]
    # A newer one is accepted again.
    harness.tokens["/lists/1"] = _token(uri, b"\x01" + b"\x00" * 15, iat=now + 1)
    assert look_up((issuer, uri, 0)) == [StatusValue.INVALID]


def test_each_issuer_has_a_cache_budget(
    settings: Settings, redis_client: redis.Redis, harness: _Harness
) -> None:
    one, two = f"http://{harness.host}/lists/1", f"http://{harness.host}/lists/2"
    harness.tokens["/lists/1"] = _token(one, b"\x00" * 6000)
    harness.tokens["/lists/2"] = _token(two, b"\x01" + b"\x00" * 5999)
    issuer = _issuer(harness.host)
    look_up = _remote(settings, cache_budget_bytes=10_000)
    assert look_up((issuer, one, 0), (issuer, two, 0)) == [StatusValue.VALID, StatusValue.INVALID]
    cached = [k for k in keys_under(redis_client, settings.redis_prefix) if k.endswith(b":data")]
    assert len(cached) == 1  # the second list was answered from the fetch, not cached
    assert sum(redis_client.strlen(k) for k in cached) <= 10_000
    assert look_up((issuer, one, 0), (issuer, two, 0)) == [StatusValue.VALID, StatusValue.INVALID]
    assert len(harness.requests) == 3  # list 1 from the cache, list 2 fetched again


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_status_host_on_a_private_address_is_refused_unless_the_trust_list_allows_it(
    settings: Settings, redis_client: redis.Redis, harness: _Harness, host: str
) -> None:
    netloc = f"{host}:{harness.server_address[1]}"
    uri = f"http://{netloc}/lists/1"
    harness.tokens["/lists/1"] = _token(uri, b"\x00" * 16)
    look_up = _remote(settings)
    assert look_up((_issuer(netloc, private=False), uri, 0)) == [Reason.STATUS_UNAVAILABLE]
    assert harness.requests == []  # refused before connecting
    assert look_up((_issuer(netloc, private=True), uri, 0)) == [StatusValue.VALID]
    # Connected to the address that was checked, asking for the host by its name.
    assert harness.requests == [{"path": "/lists/1", "host": netloc}]


def test_every_kind_of_private_address_is_refused() -> None:
    for address in (
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ):
        assert not RemoteStatus.public_address(address), address
    assert RemoteStatus.public_address("93.184.216.34")
    assert RemoteStatus.public_address("2606:4700::1111")
