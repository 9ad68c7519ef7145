"""Writing the audit trail from the API: the request's id and the client come along.

Routes take an :class:`Auditor` and call it once their operation is done. It never raises:
the operation already happened (see :meth:`service.store.audit.AuditLog.record`), so the
caller is answered as usual, an error line is logged and
``thiqa_audit_write_failures_total`` counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from service.api.deps import RuntimeDep
from service.api.metrics import Metrics, metrics_of
from service.errors import StoreUnavailable
from service.logs import current_request
from service.store.audit import FIELD_PATTERNS, LOGGED_FIELDS, AuditAction, AuditLog

__all__ = ["AuditBatches", "AuditDep", "Auditor"]

log = logging.getLogger("thiqa.audit")


class AuditBatches:
    """Audit entries written after the answer, many to a round trip.

    Entries are stamped and checked when they are added, then written by one task in
    pipelines of up to ``max_batch`` entries, at most ``max_delay`` seconds after the first
    of them was added: a verification's answer never waits for its entry, and a busy server
    writes its entries in a few round trips a second instead of one per request. The app's
    lifespan calls :meth:`drain` at shutdown, which writes everything still pending: a clean
    shutdown loses nothing. An entry that cannot be written is logged with its identifying
    fields and counted (``thiqa_audit_write_failures_total``), as for :meth:`AuditLog.record`.
    """

    def __init__(self, metrics: Metrics, *, max_batch: int = 256, max_delay: float = 0.1) -> None:
        self._metrics = metrics
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._pending: list[tuple[AuditLog, str, dict[str, str]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, log: AuditLog, action: AuditAction, **values: Any) -> None:
        try:
            stream, fields = log.prepare(action, **values)
        except ValueError:
            self._failed(action, values, "ValueError")
            return
        self._pending.append((log, stream, fields))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())
        elif len(self._pending) >= self._max_batch:
            self._wake.set()

    async def _write_soon(self) -> None:
        while self._pending:
            self._wake.clear()
            if len(self._pending) < self._max_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._max_delay)
            await self._write_batch()

    async def _write_batch(self) -> None:
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        if not batch:
            return
        log = batch[0][0]  # one app, one audit log
        try:
            written = await log.append_prepared([(stream, fields) for _, stream, fields in batch])
        except StoreUnavailable:
            written = 0
        if written < len(batch):
            # Which ones failed is not known when some did: name the batch's actions.
            for _, _, fields in batch[written:]:
                self._failed(fields["action"], fields, "StoreUnavailable")

    def _failed(self, action: str, values: Mapping[str, Any], reason: str) -> None:
        self._metrics.audit_failures.inc()
        safe = {
            k: v
            for k, v in values.items()
            if k in LOGGED_FIELDS and isinstance(v, str) and FIELD_PATTERNS[k].fullmatch(v)
        }
        log.error("audit write failed: %s", reason, extra={"audit_action": str(action), **safe})

    async def drain(self) -> None:
        """Write everything pending (at shutdown)."""
        while self._pending:
            await self._write_batch()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


class Auditor:
    def __init__(
        self,
        log: AuditLog,
        metrics: Metrics,
        request_id: str | None,
        batches: AuditBatches | None = None,
    ) -> None:
        self._log = log
        self._metrics = metrics
        self._batches = batches
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
        """Write the entry after the answer has gone (see :class:`AuditBatches`)."""
        if self._batches is None:
            raise RuntimeError("this Auditor has no batch writer")
        self._batches.add(
            self._log, action, via="api", client=client, request_id=self._request_id, **fields
        )


async def get_auditor(request: Request, runtime: RuntimeDep) -> Auditor:
    context = current_request.get()
    return Auditor(
        runtime.audit,
        metrics_of(request),
        context.request_id if context is not None else None,
        request.app.state.audit_batches,
    )


AuditDep = Annotated[Auditor, Depends(get_auditor)]
