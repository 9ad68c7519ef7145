"""One pipelined connection to a single Redis server for the calls on every request's path.

A verification makes one Redis round trip (its API key and its status entry, see
:mod:`service.store.round_trip`), and through redis-py's asyncio client that round trip cost
about 80 µs of CPU: a connection borrowed from the pool and given back, the commands packed
in Python, each answer read through a StreamReader under a timeout of its own. That was a
fifth of a verification. Here every caller of a process shares one connection: each writes
its commands, packed by hiredis, and waits for exactly as many answers, which Redis sends in
the order the commands arrived (RESP pipelining), parsed by hiredis' reader. Nothing is
reordered, merged or retried; under load, the commands of all callers of one turn of the
event loop travel in one write.

Written here, not taken from a library, because redis-py offers no shared pipelined
connection, and the clients that did (aioredis 1) are unmaintained; the protocol work itself
(packing, parsing, error classes) stays with hiredis and redis-py.

Only for one server reached by ``redis://`` or ``unix://``: Cluster and Sentinel keep
redis-py's routing and failover, TLS keeps redis-py's certificate handling
(:func:`service.store.connection.connect` decides; :func:`send_together` falls back).

It fails closed. A connection that breaks, or whose answers do not all come within the
deadline, fails every caller waiting on it (redis-py's ConnectionError or TimeoutError, which
the stores turn into StoreUnavailable) and is closed; the next call connects anew. A caller
cancelled while it waits keeps its place in the queue: its answers are read and dropped, so
nobody else ever receives them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Multiplexed"]

#: Commands a connection may have waiting for answers; past it a caller is refused at once
#: (ConnectionError) rather than queued behind a Redis that is not keeping up.
MAX_WAITING = 20_000


_PARTIAL = object()


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[list[Any]]
    expected: int
    answers: list[Any] = field(default_factory=list)


class _Protocol(asyncio.Protocol):
    """The connection: writes what callers send, hands each its answers in order."""

    def __init__(self) -> None:
        # Error answers become redis-py's exception classes (NoScriptError, ...), returned in
        # the answer's place as redis-py's pipelines do, never raised for the others.
        # A sentinel of our own for "no complete answer yet": hiredis' default, False, is
        # also what a RESP3 boolean false parses to.
        self._reader = hiredis.Reader(replyError=BaseParser.parse_error, notEnoughData=_PARTIAL)
        self._waiting: deque[_Waiter] = deque()
        self._transport: asyncio.Transport | None = None
        self.broken: Exception | None = None
        # Commands written in one turn of the event loop leave in one write (one system
        # call here, one read in Redis), in the order their callers queued.
        self._unsent: list[bytes] = []
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                answer = self._reader.gets()
            except hiredis.ProtocolError:
                self.fail(RedisConnectionError("Redis sent something that is not RESP"))
                return
            if answer is _PARTIAL:
                return
            if not self._waiting:
                self.fail(RedisConnectionError("Redis answered a command nobody sent"))
                return
            waiter = self._waiting[0]
            waiter.answers.append(answer)
            if len(waiter.answers) == waiter.expected:
                self._waiting.popleft()
                if not waiter.future.done():  # a cancelled caller's answers are dropped
                    waiter.future.set_result(waiter.answers)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError("Connection to Redis lost"))

    def fail(self, error: Exception) -> None:
        """Fail every caller still waiting and close: answers can no longer be matched."""
        if self.broken is None:
            self.broken = error
        self._unsent.clear()
        while self._waiting:
            future = self._waiting.popleft().future
            if not future.done():
                future.set_exception(error)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    async def call(self, commands: Sequence[Sequence[Any]], timeout: float) -> list[Any]:
        if self.broken is not None or self._transport is None:
            raise RedisConnectionError("Connection to Redis lost")
        if len(self._waiting) >= MAX_WAITING:
            raise RedisConnectionError("Too many commands waiting for Redis")
        if not commands:
            return []
        # Packed before anything is queued: an argument hiredis cannot pack raises here,
        # and must not leave a caller in the queue whose commands were never sent.
        packed = [hiredis.pack_command(tuple(c)) for c in commands]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append(_Waiter(future, len(commands)))
        self._unsent.extend(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        # One timer handle, not an asyncio.timeout() block: half the cost, on every call.
        deadline = loop.call_later(timeout, self._expire, future)
        try:
            return await future
        finally:
            deadline.cancel()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._unsent and self.broken is None and self._transport is not None:
            self._transport.write(b"".join(self._unsent))
        self._unsent.clear()

    def _expire(self, future: asyncio.Future[list[Any]]) -> None:
        if not future.done():
            # Redis is stuck or the network is: nobody's answers can be trusted to come.
            self.fail(RedisTimeoutError("Timeout reading from Redis"))


class Multiplexed:
    """The shared connection of one client, made on first use and again after a failure."""

    def __init__(
        self,
        *,
        path: str | None = None,
        host: str = "localhost",
        port: int = 6379,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self._path = path
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._db = db
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None

    async def send(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The answers to ``commands``, in order, an error answer in its place (not raised).
        Raises ConnectionError or TimeoutError (redis-py's) when Redis cannot answer."""
        protocol = self._protocol
        if protocol is None or protocol.broken is not None or self._loop is not _running():
            protocol = await self._connect()
        return await protocol.call(commands, self._timeout)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a client reused on another event loop starts afresh
            self._protocol, self._loop, self._connecting = None, loop, asyncio.Lock()
        assert self._connecting is not None
        async with self._connecting:  # callers arriving meanwhile share one attempt
            current = self._protocol
            if current is not None and current.broken is None:
                return current
            try:
                async with asyncio.timeout(self._connect_timeout):
                    if self._path is not None:
                        _, protocol = await loop.create_unix_connection(_Protocol, self._path)
                    else:
                        _, protocol = await loop.create_connection(
                            _Protocol, self._host, self._port
                        )
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(
                    f"Cannot connect to Redis: {type(exc).__name__}"
                ) from None
            try:
                await self._hello(protocol)
            except BaseException:
                protocol.fail(RedisConnectionError("Redis refused the connection"))
                raise
            self._protocol = protocol
            return protocol

    async def _hello(self, protocol: _Protocol) -> None:
        """RESP3 and the credentials, as redis-py's own connections start."""
        hello: list[Any] = ["HELLO", 3]
        if self._password is not None:
            hello += ["AUTH", self._username or "default", self._password]
        commands: list[list[Any]] = [hello]
        if self._db:
            commands.append(["SELECT", self._db])
        for answer in await protocol.call(commands, self._connect_timeout):
            if isinstance(answer, Exception):  # WRONGPASS, NOAUTH, a database out of range
                raise AuthenticationError("Redis refused the credentials or the database")

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.fail(RedisConnectionError("Connection to Redis closed"))
            self._protocol = None


def _running() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
