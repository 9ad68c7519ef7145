"""Writing the audit trail from the API: the request's id and the client come along.

Routes take an :class:`Auditor` and call it once their operation is done. It never raises:
the operation already happened (see :meth:`service.store.audit.AuditLog.record`), so the
caller is answered as usual, an error line is logged and
``thiqa_audit_write_failures_total`` counts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from service.api.deps import RuntimeDep
from service.api.metrics import Metrics, metrics_of
from service.logs import current_request
from service.store.audit import AuditAction, AuditLog

__all__ = ["AuditDep", "Auditor", "BackgroundWrites"]

log = logging.getLogger("thiqa.audit")


class BackgroundWrites:
    """Audit writes that run after the answer, on their own tasks.

    Not Starlette's BackgroundTasks: those run inside the request's ASGI call, so the next
    request on the same keep-alive connection would wait for the write. The app's lifespan
    drains what is still pending at shutdown.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(write)
        self._tasks.add(task)  # a task nobody references may be collected mid-flight
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Auditor:
    def __init__(
        self,
        log: AuditLog,
        metrics: Metrics,
        request_id: str | None,
        writes: BackgroundWrites | None = None,
    ) -> None:
        self._log = log
        self._metrics = metrics
        self._writes = writes
        # Taken when the request is handled: a background write must not depend on the
        # request context still being there.
        self._request_id = request_id

    async def __call__(self, action: AuditAction, *, client: str, **fields: Any) -> None:
        written = await self._log.record(
            action, via="api", client=client, request_id=self._request_id, **fields
        )
        if not written:
            self._metrics.audit_failures.inc()

    def soon(self, action: AuditAction, *, client: str, **fields: Any) -> None:
        """Write the entry after the answer has gone (see :class:`BackgroundWrites`)."""
        if self._writes is None:
            raise RuntimeError("this Auditor has no background writer")
        self._writes.spawn(self(action, client=client, **fields))


async def get_auditor(request: Request, runtime: RuntimeDep) -> Auditor:
    context = current_request.get()
    return Auditor(
        runtime.audit,
        metrics_of(request),
        context.request_id if context is not None else None,
        request.app.state.background_writes,
    )


AuditDep = Annotated[Auditor, Depends(get_auditor)]
