"""Several scripts (or commands) in one Redis round trip.

A verification needs the API key checked and counted (the ``{clients}`` slot) and a status
entry read (the list's ``{sl:...}`` slot); a batch needs up to a hundred entries. Each script
stays on its own slot, so Redis Cluster still accepts every one, and a pipeline sends them
together: one round trip instead of one per script.

Not redis-py's ``Script`` objects in a pipeline: those send ``SCRIPT EXISTS`` before every
pipeline, a second round trip each time. Not its ``Pipeline`` either: on the path of every
verification its bookkeeping cost as much Python time as the verification's own checks. The
``EVALSHA`` commands are packed and written on one pooled connection and their answers read
back in order; a connection that fails or is interrupted midway is dropped, never reused
with answers still unread. When Redis has lost a script (a restart, ``SCRIPT FLUSH``) the
calls refused with NOSCRIPT, and only those, are sent again after loading, so a script that
did run never runs twice. The audit trail writes its batches of ``XADD`` the same way
(:func:`send_together`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from service.store.connection import translate_errors

__all__ = ["ScriptCall", "run_together", "send_together"]


@dataclass(frozen=True, slots=True)
class ScriptCall:
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[Any]


async def run_together(redis: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """The results of ``calls``, in order, from one pipelined round trip (two if Redis had
    lost a script). Raises StoreUnavailable when Redis cannot answer or a script fails."""
    results: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    async with translate_errors():
        for attempt in range(2):
            answers = await send_together(
                redis,
                [
                    (
                        "EVALSHA",
                        calls[i].script.sha,
                        len(calls[i].keys),
                        *calls[i].keys,
                        *calls[i].args,
                    )
                    for i in pending
                ],
            )
            missing = []
            for i, answer in zip(pending, answers, strict=True):
                if isinstance(answer, NoScriptError) and attempt == 0:
                    missing.append(i)
                elif isinstance(answer, Exception):
                    raise answer if isinstance(answer, RedisError) else RedisError(str(answer))
                else:
                    results[i] = answer
            if not missing:
                return results
            for script in {calls[i].script.sha: calls[i].script for i in missing}.values():
                await redis.script_load(script.script)
            pending = missing
    raise AssertionError("unreachable: the second attempt raises or returns")  # pragma: no cover


async def send_together(redis: aioredis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Write ``commands`` at once on one connection and read their answers in order; an
    error answer is returned in its place, not raised.

    On one server (without TLS) they go on the connection all callers share
    (:mod:`service.store.multiplexed`). On Redis Cluster the commands' slots live on several
    nodes: there the cluster client's own pipeline sends each node its share, at once, and
    answers in the same order. Otherwise, on a pooled connection of redis-py's."""
    multiplexed = getattr(redis, "multiplexed", None)
    if multiplexed is not None:  # one server: the process's shared pipelined connection
        answers: list[Any] = await multiplexed.send(commands)
        return answers
    pool = getattr(redis, "connection_pool", None)
    if pool is None:
        async with redis.pipeline() as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        answers = []
        for _ in commands:
            try:
                answers.append(await connection.read_response())
            except ResponseError as refused:  # read whole: the next answer follows
                answers.append(refused)
        return answers
    except BaseException:
        # Interrupted with answers unread (cancelled, timed out, disconnected): the
        # connection must never serve another command.
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
