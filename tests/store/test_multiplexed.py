"""The pipelined connection verifications share: answers to the right caller, and failing
closed when Redis stalls, dies or refuses the credentials. Each test that stops or kills
Redis runs its own redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import uvloop
from redis.exceptions import AuthenticationError, NoScriptError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.api.server import free_port
from service.errors import StoreUnavailable
from service.store.connection import KeySpace, connect
from service.store.embedded import find_redis_server
from service.store.multiplexed import Multiplexed
from service.store.round_trip import run_together, send_together
from service.store.status import StatusStore

#: A script that keeps Redis busy for about 50 ms, so its answer comes after a cancel.
SLOW = (
    "local t = redis.call('TIME') local stop = t[1] * 1000000 + t[2] + 50000 "
    "while true do t = redis.call('TIME') "
    "if t[1] * 1000000 + t[2] > stop then return 'slow' end end"
)


class Server:
    def __init__(self, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [
                str(find_redis_server()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return self
            except redis.AuthenticationError:
                return self  # up, and asking for a password
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@contextmanager
def server(tmp_path: Path, *extra: str) -> Iterator[Server]:
    running = Server(tmp_path, *extra).start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            os.kill(running.process.pid, signal.SIGCONT)
            running.kill()


def _mux(port: int, *, timeout: float = 2.0, **credentials: Any) -> Multiplexed:
    return Multiplexed(
        host="127.0.0.1", port=port, timeout=timeout, connect_timeout=timeout, **credentials
    )


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_each_caller_gets_its_own_answers_even_beside_a_cancelled_one(
    tmp_path: Path, loop: str, over: str
) -> None:
    """Over TCP and a unix socket (the embedded server's), on asyncio's loop and uvloop (the
    server's)."""

    async def go(port: int) -> None:
        mux = (
            _mux(port)
            if over == "tcp"
            else Multiplexed(path=str(tmp_path / "redis.sock"), timeout=2, connect_timeout=2)
        )
        try:
            # A caller cancelled while Redis still works on its script: its answer arrives
            # later and must go to nobody.
            slow = asyncio.create_task(mux.send([("EVAL", SLOW, 0)]))
            await asyncio.sleep(0.01)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow

            async def one(n: int) -> list[Any]:
                return await mux.send([("SET", f"k{n}", n), ("INCRBY", f"k{n}", n), ("ECHO", n)])

            answers = await asyncio.gather(*(one(n) for n in range(300)))
            assert answers == [[b"OK", 2 * n, str(n).encode()] for n in range(300)]
            # RESP3's false is an answer (hiredis' default "incomplete" marker is False too),
            # and an error answer stands in its own place.
            resp3_false = ("EVAL", "redis.setresp(3) return false", 0)
            assert await mux.send([resp3_false, ("PING",)]) == [False, b"PONG"]
            refused, after = await mux.send([("EVALSHA", "0" * 40, 0), ("ECHO", "after")])
            assert isinstance(refused, NoScriptError)
            assert after == b"after"
            # A command that cannot be packed is refused before anything is sent: the next
            # caller still gets its own answer, and nothing is asked of nobody.
            with pytest.raises(TypeError):
                await mux.send([("ECHO", "fine"), ("SET", "k", None)])
            assert await mux.send([]) == []
            assert await mux.send([("ECHO", "next")]) == [b"next"]
        finally:
            mux.close()

    with server(tmp_path, "--unixsocket", str(tmp_path / "redis.sock")) as redis_server:
        if loop == "uvloop":
            uvloop.run(go(redis_server.port))
        else:
            asyncio.run(go(redis_server.port))


@pytest.mark.slow
def test_a_stalled_redis_fails_every_waiting_caller_then_the_next_call_reconnects(
    tmp_path: Path,
) -> None:
    async def go(redis_server: Server) -> None:
        mux = _mux(redis_server.port, timeout=0.3)
        try:
            assert await mux.send([("PING",)]) == [b"PONG"]
            assert redis_server.process is not None
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            first: object
            second: object
            first, second = await asyncio.gather(
                mux.send([("GET", "a")]), mux.send([("GET", "b")]), return_exceptions=True
            )
            assert isinstance(first, RedisTimeoutError)
            assert isinstance(second, (RedisTimeoutError, RedisConnectionError))
            assert time.monotonic() - started < 1.5
            os.kill(redis_server.process.pid, signal.SIGCONT)
            assert await mux.send([("PING",)]) == [b"PONG"]
        finally:
            mux.close()

    with server(tmp_path) as redis_server:
        asyncio.run(go(redis_server))


@pytest.mark.slow
def test_a_killed_redis_is_a_connection_error_and_a_restarted_one_is_used_again(
    tmp_path: Path,
) -> None:
    async def go(redis_server: Server) -> None:
        mux = _mux(redis_server.port)
        try:
            assert await mux.send([("SET", "a", 1)]) == [b"OK"]
            waiting = asyncio.create_task(mux.send([("EVAL", SLOW, 0)]))
            await asyncio.sleep(0.01)
            redis_server.kill()
            with pytest.raises(RedisConnectionError):
                await waiting
            with pytest.raises(RedisConnectionError):
                await mux.send([("GET", "a")])  # nothing listens: refused, never a guess
            redis_server.start()
            assert await mux.send([("GET", "a")]) == [None]  # a fresh, empty server
        finally:
            mux.close()

    with server(tmp_path) as redis_server:
        asyncio.run(go(redis_server))


def test_credentials_and_database_are_those_of_the_url(tmp_path: Path) -> None:
    async def go(port: int) -> tuple[BaseException | None, BaseException | None]:
        good = connect(f"redis://:s3cret@127.0.0.1:{port}/3")
        wrong = connect(f"redis://:wrong@127.0.0.1:{port}/3")
        try:
            assert getattr(good, "multiplexed", None) is not None
            assert await send_together(good, [("SET", "where", "db3")]) == [b"OK"]
            store = StatusStore(wrong, KeySpace("t"), list_size=4096)
            refused: BaseException | None = None
            try:
                await run_together(wrong, [store.status_call("0123456789ab", 1)])
            except StoreUnavailable as exc:
                refused = exc
            raw: BaseException | None = None
            try:
                await _mux(port, password="wrong").send([("PING",)])
            except AuthenticationError as exc:
                raw = exc
            return refused, raw
        finally:
            await good.aclose()
            await wrong.aclose()

    with server(tmp_path, "--requirepass", "s3cret") as redis_server:
        refused, raw = asyncio.run(go(redis_server.port))
        assert isinstance(refused, StoreUnavailable)
        assert isinstance(raw, AuthenticationError)
        check = redis.Redis(port=redis_server.port, password="s3cret", db=3)
        assert check.get("where") == b"db3"
        assert redis.Redis(port=redis_server.port, password="s3cret", db=0).get("where") is None


def test_only_plain_single_server_clients_share_a_pipelined_connection() -> None:
    async def go() -> list[bool]:
        urls = ["redis://127.0.0.1:1/0", "unix:///tmp/none.sock", "rediss://127.0.0.1:1/0"]
        clients = [connect(url) for url in urls]
        try:
            return [getattr(c, "multiplexed", None) is not None for c in clients]
        finally:
            for client in clients:
                await client.aclose()

    # TLS stays with redis-py's own certificate handling.
    assert asyncio.run(go()) == [True, True, False]
