"""One client holding many event streams and long-polls starves nobody (issue 9, point 2).

Every stream used to hold a Redis pub/sub connection of its own from the shared pool: 140
streams on one request gave other clients `store_unavailable`. Now the process has one
subscriber (service.store.events) and streams are capped per client and in total with
429 `too_many_streams`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from service.api.server import BackgroundServer
from service.settings import Settings
from service.store.clients import Scope
from tests.api.test_openid4vp import create
from tests.conftest import add_client

#: More than the issue's 140, and more than the default per-client cap (100).
STREAMS = 150


async def _open_streams(url: str, key: str, request_id: str, count: int, hold: asyncio.Event):
    """Open ``count`` event streams at once; each reports its status and, if 200, stays open
    (having read its first event) until ``hold`` is set."""
    statuses: list[tuple[int, dict[str, Any] | None]] = []
    opened = asyncio.Event()

    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
    ) as client:

        async def one() -> None:
            path = f"/v1/presentation-requests/{request_id}/events"
            async with client.stream("GET", path) as response:
                if response.status_code == 200:
                    # Read with anext, not a loop left by break: leaving the loop would
                    # close the generator, and with it the connection.
                    lines = response.aiter_lines()
                    while not (await anext(lines)).startswith("data:"):
                        pass
                    statuses.append((200, None))
                else:
                    statuses.append((response.status_code, await _json(response)))
                if len(statuses) == count:
                    opened.set()
                if response.status_code == 200:
                    await hold.wait()

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.wait_for(opened.wait(), 60)
        yield statuses
        hold.set()
        await asyncio.gather(*tasks)


async def _json(response: httpx.Response) -> dict[str, Any]:
    await response.aread()
    return response.json()


def _subscribed_connections(redis_client: redis.Redis) -> int:
    """Connections to Redis holding a channel or pattern subscription."""
    return sum(1 for c in redis_client.client_list() if int(c["sub"]) or int(c["psub"]))


def test_many_streams_from_one_client_leave_everyone_else_served(
    server: BackgroundServer,
    settings: Settings,
    http: httpx.Client,
    redis_client: redis.Redis,
    issued: dict[str, Any],
    present: Callable[..., str],
) -> None:
    greedy = add_client(settings, "greedy-app", frozenset({Scope.VERIFY}))
    request_id = create(http)["request_id"]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {greedy}"}, timeout=10
    ) as greedy_http:
        request_id = create(greedy_http)["request_id"]

    async def scenario() -> None:
        hold = asyncio.Event()
        streams = _open_streams(server.url, greedy, request_id, STREAMS, hold)
        statuses = await anext(streams)
        opened = [s for s, _ in statuses if s == 200]
        refused = [body for s, body in statuses if s == 429]
        # The default cap: 100 open, every other one refused with the exact code.
        assert len(opened) == settings.max_streams_per_client == 100
        assert len(refused) == STREAMS - 100
        assert {body["code"] for body in refused if body} == {"too_many_streams"}

        # With 100 streams open, the server holds one subscription, not one per stream.
        assert _subscribed_connections(redis_client) == 1

        # Everyone else is served: verification, revocation, readiness, their own streams.
        def others() -> None:
            verdict = http.post("/v1/verify", json={"credential": present()})
            assert verdict.status_code == 200, verdict.text
            assert verdict.json()["valid"] is True
            revoked = http.post(f"/v1/credentials/{issued['credential_id']}/revoke")
            assert revoked.status_code == 200, revoked.text
            again = http.post("/v1/verify", json={"credential": present()})
            assert [e["code"] for e in again.json()["errors"]] == ["revoked"]
            assert http.get("/ready").status_code == 200
            mine = create(http)["request_id"]
            assert (
                http.get(f"/v1/presentation-requests/{mine}", params={"wait": 1}).json()["state"]
                == "pending"
            )

        await asyncio.to_thread(others)
        # A long-poll from the greedy client counts against the same cap.
        refused_poll = await asyncio.to_thread(
            lambda: httpx.get(
                f"{server.url}/v1/presentation-requests/{request_id}",
                params={"wait": 5},
                headers={"Authorization": f"Bearer {greedy}"},
            )
        )
        assert refused_poll.status_code == 429
        assert refused_poll.json()["code"] == "too_many_streams"
        assert refused_poll.headers["retry-after"] == "5"
        with pytest.raises(StopAsyncIteration):
            await anext(streams)

    asyncio.run(scenario())

    # Closed streams give their places back.
    deadline = time.monotonic() + 10
    while True:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {greedy}"}, timeout=10
        ) as greedy_http:
            answer = greedy_http.get(f"/v1/presentation-requests/{request_id}", params={"wait": 1})
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def capped(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_streams_per_client": 3, "max_streams": 5})


def test_the_total_cap_holds_across_clients(capped: Settings) -> None:
    first = add_client(capped, "first-app", frozenset({Scope.VERIFY}))
    second = add_client(capped, "second-app", frozenset({Scope.VERIFY}))
    with BackgroundServer(capped) as server:
        ids = {}
        for key in (first, second):
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
            ) as client:
                ids[key] = create(client)["request_id"]

        async def scenario() -> None:
            hold = asyncio.Event()
            a = _open_streams(server.url, first, ids[first], 4, hold)
            a_statuses = await anext(a)
            assert sorted(s for s, _ in a_statuses) == [200, 200, 200, 429]
            b = _open_streams(server.url, second, ids[second], 3, hold)
            b_statuses = await anext(b)
            # Two places were left of five in all.
            assert sorted(s for s, _ in b_statuses) == [200, 200, 429]
            (refused,) = [body for s, body in b_statuses if s == 429]
            assert refused is not None
            assert refused["code"] == "too_many_streams"
            for stream in (a, b):
                with pytest.raises(StopAsyncIteration):
                    await anext(stream)

        asyncio.run(scenario())
