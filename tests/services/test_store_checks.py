"""Start-up checks of the Redis, run by the app's lifespan (service.store.inspection)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from service.api.app import create_app
from service.api.server import free_port
from service.settings import Settings
from service.store.connection import connect, parse_redis_url
from service.store.embedded import EmbeddedRedis
from service.store.inspection import StoreMisconfigured, check_store, inspect_store


@pytest.mark.parametrize(
    ("fixture", "expected"), [("redis_url", 0), ("redis_cluster", 1), ("redis_sentinel", 1)]
)
def test_the_default_replicas_follow_the_topology(
    request: pytest.FixtureRequest, fixture: str, expected: int
) -> None:
    value = request.getfixturevalue(fixture)
    url = value if isinstance(value, str) else value.url

    async def go() -> int:
        client = connect(url)
        try:
            facts = await inspect_store(client)
        finally:
            await client.aclose()
        return check_store(facts, parse_redis_url(url), None)

    assert asyncio.run(go()) == expected


def test_the_server_does_not_start_on_a_redis_that_may_evict(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis", durable=False) as embedded:
        plain = redis.Redis.from_url(embedded.url)
        plain.config_set("maxmemory-policy", "allkeys-lru")
        plain.close()
        settings = Settings(
            redis_url=embedded.url,
            keys_dir=tmp_path / "keys",
            data_dir=tmp_path / "data",
            port=free_port(),
            status_list_size=4096,
        )
        app = create_app(settings)

        async def start() -> None:
            async with app.router.lifespan_context(app):
                pass

        with pytest.raises(StoreMisconfigured, match="allkeys-lru"):
            asyncio.run(start())
        # Nothing was written: not even a status list.
        check = redis.Redis.from_url(embedded.url)
        assert check.dbsize() == 0
        check.close()
