"""One Redis subscriber per process, fanned out in memory to every waiter.

A long-poll or event stream on a presentation request waits for the answer's message on the
request's channel. Subscribing once per waiter held one Redis connection per open stream, so
one client opening streams could starve everyone's verifications of connections. Here one
pattern subscription (``<prefix>:{vp:*}:events``) carries every request's news to the process,
which wakes the waiters of that channel; open streams cost memory, not connections.

Classic (not sharded) pub/sub reaches every node of a Redis Cluster, so the subscription may
sit on any node; under Sentinel it follows the master. When the subscription breaks it is
made again, and every waiter is woken to read the state afresh: a message lost while
disconnected delays no one past their next look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from service.errors import StoreUnavailable
from service.store.connection import SOCKET_TIMEOUT, open_pubsub, subscriber_for

__all__ = ["EventHub", "Watch"]

log = logging.getLogger("thiqa.store")

#: Pause before subscribing again after the subscription broke.
_RETRY_SECONDS = 0.5


class Watch:
    """One waiter's view of its channel."""

    def __init__(self) -> None:
        self._news = asyncio.Event()

    def notify(self) -> None:
        self._news.set()

    async def wait(self, timeout: float) -> bool:
        """Up to ``timeout`` seconds for news; True when some came. A False is no proof of
        silence: read the state."""
        try:
            await asyncio.wait_for(self._news.wait(), max(timeout, 0.0))
        except TimeoutError:
            return False
        self._news.clear()
        return True


class EventHub:
    """The process's one subscription to ``pattern``, and the waiters of each channel."""

    def __init__(self, redis: aioredis.Redis, pattern: str) -> None:
        self._redis = redis
        self._subscriber: aioredis.Redis | None = None
        self._pattern = pattern
        self._waiters: dict[bytes, set[Watch]] = {}
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Waiters registered now, over all channels."""
        return sum(len(w) for w in self._waiters.values())

    @contextlib.asynccontextmanager
    async def watch(self, channel: str) -> AsyncIterator[Watch]:
        """Wait for news on ``channel``. Registered, and the subscription confirmed, *before*
        it yields: read the state after entering, and an answer landing in between is either
        in that read or in the next message."""
        key = channel.encode()
        watch = Watch()
        self._waiters.setdefault(key, set()).add(watch)
        try:
            self._start()
            try:
                await asyncio.wait_for(self._subscribed.wait(), SOCKET_TIMEOUT)
            except TimeoutError:
                raise StoreUnavailable("The status store cannot answer right now.") from None
            yield watch
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(watch)
                if not waiters:
                    del self._waiters[key]

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name="thiqa-event-hub"
            )

    async def _listen(self) -> None:
        while True:
            if self._subscriber is None:
                self._subscriber = subscriber_for(self._redis)
            pubsub: PubSub | None = None
            try:
                pubsub = await open_pubsub(self._subscriber)
                await pubsub.psubscribe(self._pattern)
                # Wait for the confirmation: only then does a message published now reach us.
                while await pubsub.get_message(timeout=SOCKET_TIMEOUT) is None:
                    pass
                self._subscribed.set()
                self._wake_all()  # anything published while we were away: look again
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=SOCKET_TIMEOUT
                    )
                    if message is not None and message["type"] == "pmessage":
                        for watch in tuple(self._waiters.get(message["channel"], ())):
                            watch.notify()
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                self._wake_all()
                log.warning("event subscription lost (%s); subscribing again", type(exc).__name__)
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for watch in waiters:
                watch.notify()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._subscribed.clear()
        if self._subscriber is not None and self._subscriber is not self._redis:
            await self._subscriber.aclose()
        self._subscriber = None
