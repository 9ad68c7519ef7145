"""``thiqa audit tail``: the newest audit entries as a table, optionally following new ones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ThiqaError
from ..settings import Settings
from ..store.audit import AuditEntry, AuditLog
from ..store.connection import KeySpace, connect
from .redis_access import redis_for

__all__ = ["audit_commands"]

#: How long one XREAD waits for new entries; below the client's socket timeout.
_BLOCK_MS = 1000
_COLUMNS = ("time", "action", "client", "via", "credential", "result", "details", "request id")


def _table(entries: list[AuditEntry], *, header: bool) -> Table:
    table = Table(*_COLUMNS, show_header=header)
    for entry in entries:
        details = "  ".join(
            f"{name}={value}" for name, value in (
                ("issuer", entry.issuer), ("vct", entry.vct), ("kid", entry.kid),
                ("scopes", entry.scopes),
            ) if value
        )
        table.add_row(entry.time, entry.action, entry.client, entry.via, entry.credential_id,
                      ",".join(entry.result), details, entry.request_id)
    return table


def audit_commands(
    settings: Callable[[], Settings], console: Console, err: Console
) -> typer.Typer:
    audit_app = typer.Typer(help="The audit trail (an append-only Redis stream).",
                            no_args_is_help=True, rich_markup_mode="markdown")

    @audit_app.command("tail")
    def tail(
        lines: Annotated[int, typer.Option("-n", "--lines", min=1, max=10_000,
                                           help="How many of the newest entries.")] = 20,
        follow: Annotated[bool, typer.Option("--follow", "-f",
                                             help="Keep printing new entries (Ctrl-C stops).")]
        = False,
    ) -> None:
        """Print the newest audit entries, oldest first. Entries hold ids, codes and client
        names, never a personal claim."""
        chosen = settings()
        with redis_for(chosen) as ready:
            assert ready.redis_url is not None
            url = ready.redis_url.get_secret_value()

            async def go() -> None:
                redis = connect(url)
                audit = AuditLog(redis, KeySpace(ready.redis_prefix))
                try:
                    entries = await audit.tail(lines)
                    if entries or not follow:
                        console.print(_table(entries, header=True) if entries
                                      else "No audit entries yet.")
                    # An empty stream: every entry that comes is new, so start from the first.
                    last = entries[-1].id if entries else "0-0"
                    while follow:
                        fresh = await audit.after(last, block_ms=_BLOCK_MS)
                        if fresh:
                            console.print(_table(fresh, header=False))
                            last = fresh[-1].id
                finally:
                    await redis.aclose()

            try:
                asyncio.run(go())
            except ThiqaError as exc:
                err.print(f"[red]{exc.code}:[/red] {exc.detail}")
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                raise typer.Exit(0) from None

    return audit_app
