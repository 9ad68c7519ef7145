"""Commands of ``thiqa``. Each one reads the same ``THIQA_*`` settings as the server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ..errors import ThiqaError
from ..keyring import KeyRingError
from ..runtime import load_keyring
from ..settings import Settings
from ..store.clients import ClientStore, parse_scopes
from ..store.connection import KeySpace, connect
from .redis_access import redis_for

app = typer.Typer(
    name="thiqa",
    help="Thiqa (ثقة): issue, verify and revoke digital identity credentials (SD-JWT VC).",
    no_args_is_help=True,
    add_completion=False,
)
clients_app = typer.Typer(
    help="API clients (government apps) and their keys.", no_args_is_help=True
)
keys_app = typer.Typer(help="The issuer's signing keys.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    unknown = Settings.unknown_variables(os.environ)
    if unknown:
        err.print(f"[red]Unknown settings:[/red] {', '.join(unknown)} (see README, Configuration)")
        raise typer.Exit(2)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


def _run_store(settings: Settings, action: Callable[[ClientStore], Awaitable[T]]) -> T:
    with redis_for(settings) as ready:
        assert ready.redis_url is not None

        async def go() -> T:
            redis = connect(ready.redis_url.get_secret_value())
            try:
                return await action(ClientStore(redis, KeySpace(ready.redis_prefix)))
            finally:
                await redis.aclose()

        try:
            return asyncio.run(go())
        except ThiqaError as exc:
            err.print(f"[red]{exc.code}:[/red] {exc.detail}")
            raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [THIQA_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [THIQA_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API. Without THIQA_REDIS_URL a private redis-server is started under
    THIQA_DATA_DIR (append-only, fsync on every write) and stopped on exit."""
    from ..server import serve as run

    settings = _settings(host=host, port=port)
    try:
        keyring = load_keyring(settings)
    except KeyRingError as exc:
        err.print(f"[red]Keys:[/red] {exc}")
        raise typer.Exit(1) from None
    with redis_for(settings) as ready:
        console.print(f"Thiqa issuer [bold]{ready.issuer_url}[/bold], signing key "
                      f"[cyan]{keyring.active.kid}[/cyan] ({keyring.active.alg})")
        if workers > 1:
            assert ready.redis_url is not None
            os.environ["THIQA_REDIS_URL"] = ready.redis_url.get_secret_value()
            os.environ["THIQA_HOST"], os.environ["THIQA_PORT"] = ready.host, str(ready.port)
        run(ready, workers=workers)


@app.command()
def demo(
    citizen: Annotated[int | None, typer.Option(help="Index of the seeded citizen to use.")] = None,
    keep: Annotated[Path | None, typer.Option(
        help="Keep the demo's keys and Redis data in this folder instead of a temporary one.",
    )] = None,
) -> None:
    """Walk the trusted verification flow against a live server, step by step."""
    from ..demo import run_demo

    raise typer.Exit(run_demo(console, citizen=citizen, keep=keep))


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Argument(help="A name for the app, e.g. tax-portal.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: issue, revoke, verify.")] = "verify",
) -> None:
    """Create a client and print its API key. The key is shown once and stored only hashed."""
    settings = _settings()
    try:
        wanted = parse_scopes(scopes.split(","))
    except ThiqaError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.detail}")
        raise typer.Exit(2) from None
    key = _run_store(settings, lambda store: store.add(name, wanted))
    console.print(f"Client [bold]{name}[/bold] with scopes {', '.join(sorted(wanted))}.")
    console.print("API key (shown once, keep it secret):")
    console.print(key, markup=False, highlight=False, soft_wrap=True)


@clients_app.command("list")
def clients_list() -> None:
    """List clients and their scopes (never their keys)."""
    clients = _run_store(_settings(), lambda store: store.list())
    table = Table("name", "scopes", "created")
    from datetime import UTC, datetime

    for client in clients:
        created = datetime.fromtimestamp(client.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        table.add_row(client.name, ", ".join(sorted(client.scopes)), created)
    console.print(table if clients else "No clients yet: thiqa clients add NAME --scopes ...")


@clients_app.command("revoke")
def clients_revoke(name: Annotated[str, typer.Argument(help="The client to remove.")]) -> None:
    """Delete a client; its key stops working immediately."""
    _run_store(_settings(), lambda store: store.revoke(name))
    console.print(f"Client [bold]{name}[/bold] revoked.")


@keys_app.command("show")
def keys_show() -> None:
    """Show the issuer's public keys (JWKS) and which one signs. Never prints private keys."""
    settings = _settings()
    try:
        keyring = load_keyring(settings)
    except KeyRingError as exc:
        err.print(f"[red]Keys:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table("kid", "alg", "active")
    for kid, key in keyring.keys.items():
        table.add_row(kid, key.alg, "yes" if kid == keyring.active.kid else "")
    console.print(f"Issuer: {settings.issuer_url}  (keys in {settings.keys_dir.resolve()})")
    console.print(table)
    console.print_json(data=keyring.jwks())


def main() -> None:
    app()


__all__ = ["app", "main"]
