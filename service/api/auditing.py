"""Writing the audit trail from the API: the request's id and the client come along.

Routes take an :class:`Auditor` and call it once their operation is done. It never raises:
the operation already happened (see :meth:`service.store.audit.AuditLog.record`), so the
caller is answered as usual, an error line is logged and
``thiqa_audit_write_failures_total`` counts it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ..logs import current_request
from ..store.audit import AuditAction, AuditLog
from .deps import RuntimeDep
from .metrics import Metrics, metrics_of

__all__ = ["AuditDep", "Auditor"]


class Auditor:
    def __init__(self, log: AuditLog, metrics: Metrics, request_id: str | None) -> None:
        self._log = log
        self._metrics = metrics
        # Taken when the request is handled: a background write must not depend on the
        # request context still being there.
        self._request_id = request_id

    async def __call__(self, action: AuditAction, *, client: str, **fields: Any) -> None:
        written = await self._log.record(
            action, via="api", client=client, request_id=self._request_id, **fields
        )
        if not written:
            self._metrics.audit_failures.inc()


def get_auditor(request: Request, runtime: RuntimeDep) -> Auditor:
    context = current_request.get()
    return Auditor(runtime.audit, metrics_of(request),
                   context.request_id if context is not None else None)


AuditDep = Annotated[Auditor, Depends(get_auditor)]
