"""The audit entries of key changes: the one place ``thiqa keys`` writes to the audit trail.

A key change lives in ``keys/`` and has already happened when this runs, so nothing here may
undo it or hide it: a Redis that cannot be reached (or started) costs the entry, reported on
stderr by the caller, never the revocation. Entries carry only the ``kid`` (a public key's
thumbprint), never key material.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.cli.redis_access import redis_for
from service.settings import Settings
from service.store.audit import AuditAction, AuditLog
from service.store.connection import KeySpace, connect

__all__ = ["record_key_events"]


def record_key_events(settings: Settings, events: Sequence[tuple[AuditAction, str]]) -> bool:
    """Append ``(action, kid)`` entries (``key.rotated``, ``key.revoked``); True when all were
    written."""

    async def go(url: str, prefix: str) -> bool:
        redis = connect(url)
        try:
            audit = AuditLog(redis, KeySpace(prefix), max_entries=settings.audit_max_entries)
            written = [await audit.record(action, via="cli", kid=kid) for action, kid in events]
            return all(written)
        finally:
            await redis.aclose()

    try:
        with redis_for(settings) as ready:
            assert ready.redis_url is not None
            return asyncio.run(go(ready.redis_url.get_secret_value(), ready.redis_prefix))
    # Whatever failed (no Redis, no redis-server to start), the key change stands; the
    # caller warns.
    except Exception:
        return False
