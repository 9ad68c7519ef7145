"""Which Redis a command talks to: the configured one, the embedded one a running ``thiqa
serve`` owns, or a private one started for the length of the command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from service.settings import Settings
from service.store.embedded import EmbeddedRedis, EmbeddedRedisError

__all__ = ["redis_for"]

_err = Console(stderr=True)


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
    embedded: EmbeddedRedis | None = None
    try:
        embedded = EmbeddedRedis(settings.data_dir, binary=settings.redis_server_bin)
        embedded.start()
    except EmbeddedRedisError as exc:
        # No redis-server to run, or it would not start: a message and exit 1, not a
        # traceback. (Only the start is guarded; the command's own errors pass through.)
        if embedded is not None:
            embedded.stop()
        _err.print(
            f"[red]Redis:[/red] {escape(str(exc))} (set THIQA_REDIS_URL, or "
            "THIQA_REDIS_SERVER_BIN)",
            highlight=False,
        )
        raise typer.Exit(1) from None
    try:
        yield settings.with_redis(embedded.url)
    finally:
        embedded.stop()
