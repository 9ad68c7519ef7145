"""THIQA_REDIS_URL's topologies: what each form means, and what is refused."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster

from service.store.connection import RedisTopology, connect, parse_redis_url
from tests.topologies import ClusterGroup, SentinelGroup


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:7000/0", "rediss://cache.example:6380", "unix:///run/redis.sock?db=2"],
)
def test_single_server_urls_are_passed_to_redis_py_unchanged(url: str) -> None:
    topology = parse_redis_url(url)
    assert topology == RedisTopology(kind="single", url=url, tls=url.startswith("rediss://"))
    assert not topology.may_have_replicas


def test_cluster_url_lists_its_startup_nodes() -> None:
    topology = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[fd00::3]:7002")
    assert topology.kind == "cluster"
    assert topology.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("fd00::3", 7002))
    assert not topology.tls
    assert topology.may_have_replicas


def test_sentinel_url_names_its_sentinels_service_and_credentials() -> None:
    topology = parse_redis_url("rediss+sentinel://thiqa:s%40cret@s1:26379,s2:26379/ids-master")
    assert topology.kind == "sentinel"
    assert topology.tls
    assert topology.nodes == (("s1", 26379), ("s2", 26379))
    assert topology.service == "ids-master"
    assert (topology.username, topology.password) == ("thiqa", "s@cret")
    assert "s@cret" not in repr(topology)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379",
        "redis+cluster://",
        "redis+cluster://127.0.0.1",
        "redis+cluster://127.0.0.1:0",
        "redis+cluster://127.0.0.1:70000",
        "redis+cluster://127.0.0.1:7000/0",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1:26379/a b",
        "redis+mesh://127.0.0.1:7000",
    ],
)
def test_malformed_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match=r"THIQA_REDIS_URL|host:port|service|no path") as caught:
        parse_redis_url(url.replace("127.0.0.1", "pw-1234@127.0.0.1", 1))
    assert "pw-1234" not in str(caught.value)


def test_a_cluster_url_gives_a_cluster_client_that_routes_by_slot(
    redis_cluster: ClusterGroup,
) -> None:
    async def go() -> list[bytes | None]:
        client = connect(redis_cluster.url)
        try:
            assert isinstance(client, RedisCluster)
            # Keys in many slots, so several masters answer: a single-node client would get
            # MOVED for most of them.
            await asyncio.gather(*(client.set(f"conn-test:{{{i}}}", i) for i in range(32)))
            values = await asyncio.gather(*(client.get(f"conn-test:{{{i}}}") for i in range(32)))
            await asyncio.gather(*(client.delete(f"conn-test:{{{i}}}") for i in range(32)))
            return values
        finally:
            await client.aclose()

    assert asyncio.run(go()) == [str(i).encode() for i in range(32)]


def test_a_sentinel_url_reaches_the_master_the_sentinels_name(
    redis_sentinel: SentinelGroup,
) -> None:
    async def go() -> int:
        client = connect(redis_sentinel.url)
        try:
            assert await client.set("conn-test:sentinel", 1)  # a replica would refuse it
            await client.delete("conn-test:sentinel")
            return int((await client.info("server"))["tcp_port"])
        finally:
            await client.aclose()

    assert asyncio.run(go()) == redis_sentinel.master()
