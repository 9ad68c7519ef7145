"""The process's one subscriber wakes every waiter of a channel, on every topology."""

from __future__ import annotations

import asyncio

import redis

from service.settings import Settings
from service.store.connection import KeySpace, connect
from service.store.events import EventHub
from tests.store.helpers import url_of


def _subscribed(redis_client: redis.Redis) -> int:
    if isinstance(redis_client, redis.RedisCluster):
        per_node = redis_client.client_list(target_nodes=redis.RedisCluster.ALL_NODES)
        clients = [c for node in per_node.values() for c in node]
    else:
        clients = redis_client.client_list()
    return sum(1 for c in clients if int(c["psub"]))


def test_one_subscription_wakes_every_waiter_of_the_channel_only(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = KeySpace(settings.redis_prefix)
    channel, other = keys.presentation_events("a" * 22), keys.presentation_events("b" * 22)

    async def go() -> tuple[list[bool], list[bool], int]:
        before = await asyncio.to_thread(_subscribed, redis_client)
        client = connect(url_of(settings))
        hub = EventHub(client, keys.presentation_events_pattern())
        try:
            async with (
                hub.watch(channel) as w1,
                hub.watch(channel) as w2,
                hub.watch(channel) as w3,
                hub.watch(other) as elsewhere,
            ):
                assert hub.waiting == 4
                subscriptions = await asyncio.to_thread(_subscribed, redis_client) - before
                # Published the way the answer script does, from any connection.
                await client.publish(channel, "completed")
                woken = [await w.wait(5) for w in (w1, w2, w3)]
                quiet = [await elsewhere.wait(0.3)]
            assert hub.waiting == 0
            return woken, quiet, subscriptions
        finally:
            await hub.aclose()
            await client.aclose()

    woken, quiet, subscriptions = asyncio.run(go())
    assert woken == [True, True, True]
    assert quiet == [False]
    assert subscriptions == 1  # one for four waiters
