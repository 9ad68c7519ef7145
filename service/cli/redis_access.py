"""Which Redis a command talks to: the configured one, the embedded one a running ``thiqa
serve`` owns, or a private one started on the data folder for the length of the command.

Commands that only read (``clients list``, ``audit tail``) say which store they read and never
start a Redis on an empty data folder: a private, empty Redis would answer "No clients yet"
about a server whose data lives elsewhere, which is worse than a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from service.settings import Settings
from service.store.embedded import EmbeddedRedis, EmbeddedRedisError

__all__ = ["describe_redis_url", "has_embedded_data", "redis_for"]

_err = Console(stderr=True)


def describe_redis_url(url: str) -> str:
    """``url`` without its user name or password, for people to read."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def has_embedded_data(data_dir: Path) -> bool:
    """Whether an embedded Redis has ever written its append-only file under ``data_dir``."""
    redis_dir = data_dir / "redis"
    return (redis_dir / "appendonlydir").is_dir() or (redis_dir / "appendonly.aof").is_file()


@contextmanager
def redis_for(settings: Settings, *, reading: str | None = None) -> Iterator[Settings]:
    """Yield ``settings`` with ``redis_url`` filled in, starting Redis if needed.

    ``reading`` names what a read-only command reads ("clients", "the audit trail"): it is
    then said on stderr where it is read from, and an empty data folder is refused (exit 1)
    instead of given a new, empty Redis."""
    data_dir = settings.data_dir.resolve()
    if settings.redis_url is not None:
        if reading:
            where = describe_redis_url(settings.redis_url.get_secret_value())
            _note(f"Reading {reading} from {where} (THIQA_REDIS_URL).")
        yield settings
        return
    running = EmbeddedRedis.running_at(settings.data_dir)
    if running is not None:
        if reading:
            _note(f"Reading {reading} from the running server's Redis in {data_dir}.")
        yield settings.with_redis(running)
        return
    if reading and not has_embedded_data(settings.data_dir):
        _err.print(
            f"[red]No store:[/red] no Thiqa server is running on {escape(str(data_dir))} "
            "and no Redis data is there. Set THIQA_DATA_DIR to the server's data folder, or "
            "THIQA_REDIS_URL to its Redis.",
            highlight=False,
        )
        raise typer.Exit(1)
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
    if reading:
        _note(f"Reading {reading} from the Redis data in {data_dir} (no server running).")
    try:
        yield settings.with_redis(embedded.url)
    finally:
        embedded.stop()


def _note(text: str) -> None:
    _err.print(escape(text), style="dim", highlight=False, soft_wrap=True)
