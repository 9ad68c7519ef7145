"""Several scripts in one Redis round trip.

A verification needs the API key checked and counted (the ``{clients}`` slot) and a status
entry read (the list's ``{sl:...}`` slot); a batch needs up to a hundred entries. Each script
stays on its own slot, so Redis Cluster still accepts every one, and a pipeline sends them
together: one round trip instead of one per script.

Not redis-py's ``Script`` objects in a pipeline: those send ``SCRIPT EXISTS`` before every
pipeline, a second round trip each time. The scripts go as ``EVALSHA``; when Redis has lost
them (a restart, ``SCRIPT FLUSH``) the calls refused with NOSCRIPT, and only those, are sent
again after loading, so a script that did run never runs twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from service.store.connection import translate_errors

__all__ = ["ScriptCall", "run_together"]


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
            async with redis.pipeline(transaction=False) as pipe:
                for i in pending:
                    call = calls[i]
                    pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
                answers = await pipe.execute(raise_on_error=False)
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
