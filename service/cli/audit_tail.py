"""``thiqa audit tail``: the newest audit entries, one block each (or one JSON object per
line with ``--json``), optionally following new ones."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

from service.cli.blocks import block, print_lines
from service.cli.redis_access import redis_for
from service.errors import ThiqaError
from service.settings import Settings
from service.store.audit import AuditEntry, AuditLog
from service.store.connection import KeySpace, connect

__all__ = ["audit_commands"]

#: How long one XREAD waits for new entries; below the client's socket timeout.
_BLOCK_MS = 1000


def _lines(entries: list[AuditEntry], width: int) -> list[str]:
    # One block per entry, only the fields it has: eight table columns are unreadable at 80.
    lines: list[str] = []
    for entry in entries:
        lines += block(
            f"{entry.time}  {entry.action}",
            [
                ("result", ",".join(entry.result)),
                ("client", entry.client),
                ("via", entry.via),
                ("credential", entry.credential_id),
                ("issuer", entry.issuer),
                ("vct", entry.vct),
                ("kid", entry.kid),
                ("scopes", entry.scopes),
                ("request id", entry.request_id),
            ],
            width,
        )
    return lines


def _json_lines(entries: list[AuditEntry]) -> None:
    # Every field, empty ones too, so each object has the same members; flushed per batch
    # for a consumer reading a --follow pipe.
    for entry in entries:
        sys.stdout.write(json.dumps({**asdict(entry), "result": list(entry.result)}) + "\n")
    sys.stdout.flush()


def audit_commands(settings: Callable[[], Settings], console: Console, err: Console) -> typer.Typer:
    audit_app = typer.Typer(
        help="The audit trail (an append-only Redis stream).",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    @audit_app.command("tail")
    def tail(
        lines: Annotated[
            int,
            typer.Option(
                "-n", "--lines", min=1, max=10_000, help="How many of the newest entries."
            ),
        ] = 20,
        follow: Annotated[
            bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C stops).")
        ] = False,
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="One JSON object per entry and line (nothing for an empty trail).",
            ),
        ] = False,
        verifications: Annotated[
            bool,
            typer.Option(
                "--verifications",
                help="The verifications stream instead of issuance, status, client and key events.",
            ),
        ] = False,
    ) -> None:
        """Print the newest audit entries, oldest first. Entries hold ids, codes and client
        names, never a personal claim."""

        def show(entries: list[AuditEntry]) -> None:
            if as_json:
                _json_lines(entries)
            else:
                print_lines(console, _lines(entries, console.width))

        chosen = settings()
        with redis_for(chosen, reading="the audit trail") as ready:
            assert ready.redis_url is not None
            url = ready.redis_url.get_secret_value()

            async def go() -> None:
                redis = connect(url)
                audit = AuditLog(redis, KeySpace(ready.redis_prefix))
                try:
                    entries = await audit.tail(lines, verifications=verifications)
                    if entries:
                        show(entries)
                    elif not follow and not as_json:
                        console.print("No audit entries yet.")
                    # An empty stream: every entry that comes is new, so start from the first.
                    last = entries[-1].id if entries else "0-0"
                    while follow:
                        fresh = await audit.after(
                            last, block_ms=_BLOCK_MS, verifications=verifications
                        )
                        if fresh:
                            show(fresh)
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
