"""Which Redis a command talks to: the configured one, the embedded one a running ``thiqa
serve`` owns, or a private one started for the length of the command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..settings import Settings
from ..store.embedded import EmbeddedRedis

__all__ = ["redis_for"]


@contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """Yield ``settings`` with ``redis_url`` filled in, starting Redis if needed."""
    if settings.redis_url is not None:
        yield settings
        return
    running = EmbeddedRedis.running_at(settings.data_dir)
    if running is not None:
        yield settings.with_redis(running)
        return
    with EmbeddedRedis(settings.data_dir, binary=settings.redis_server_bin) as embedded:
        yield settings.with_redis(embedded.url)
