"""Commands of ``thiqa``. Each one reads the same ``THIQA_*`` settings as the server."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from service.cli.audit_tail import audit_commands
from service.cli.blocks import print_lines
from service.cli.key_audit import record_key_events
from service.cli.key_view import key_blocks, keys_document
from service.cli.pki import pki_commands
from service.cli.redis_access import redis_for
from service.cli.wallet import wallet_app
from service.core.keys import SigningKey
from service.errors import ThiqaError
from service.keyring.keyring import KeyRingError, KeyStatus
from service.services.runtime import key_passphrase, load_keyring, open_pki, read_keyring
from service.settings import Settings
from service.store.audit import AuditAction, AuditLog
from service.store.clients import ClientStore, parse_scopes
from service.store.connection import KeySpace, connect

#: Plain help: docstrings reflowed to the terminal's width, options without a type label after
#: flags (Typer's boxed "rich" help prints `<bool>` after every flag, as if it took a value).
HELP_MARKUP: Final = None
app = typer.Typer(
    name="thiqa",
    help="Thiqa (ثقة): issue, verify and revoke digital identity credentials (SD-JWT VC).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=HELP_MARKUP,
)
clients_app = typer.Typer(
    help="API clients (government apps) and their keys.",
    no_args_is_help=True,
    rich_markup_mode=HELP_MARKUP,
)
keys_app = typer.Typer(
    help="The issuer's signing keys.", no_args_is_help=True, rich_markup_mode=HELP_MARKUP
)
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
app.add_typer(wallet_app, name="wallet")
console = Console()
err = Console(stderr=True)
app.add_typer(audit_commands(lambda: _settings(), console, err), name="audit")
app.add_typer(pki_commands(lambda: _settings(), console, err), name="pki")
T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    unknown = Settings.unknown_variables(os.environ)
    if unknown:
        err.print(f"[red]Unknown settings:[/red] {', '.join(unknown)} (see README, Configuration)")
        raise typer.Exit(2)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        # Variable and reason only: the value may be a secret (a Redis URL with a password).
        # An error of the whole model (a secret set twice, say) names its variables itself.
        problems = "; ".join(
            f"THIQA_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors()
        )
        err.print(f"[red]Invalid settings:[/red] {escape(problems)}", highlight=False)
        raise typer.Exit(2) from None


def _run_store(
    settings: Settings,
    action: Callable[[ClientStore], Awaitable[T]],
    *,
    audit: tuple[AuditAction, dict[str, Any]] | None = None,
    reading: str | None = None,
) -> T:
    """``action`` on the client store; then, if it succeeded, the ``audit`` entry.
    ``reading``: a read-only command, which says what it reads where (redis_access)."""
    with redis_for(settings, reading=reading) as ready:
        assert ready.redis_url is not None
        url = ready.redis_url.get_secret_value()

        async def go() -> T:
            redis = connect(url)
            keys = KeySpace(ready.redis_prefix)
            try:
                result = await action(ClientStore(redis, keys))
                # The change is made; an entry that cannot be written is warned about, the
                # change is not undone (as for key changes, service/cli/key_audit.py).
                if audit is not None and not await AuditLog(
                    redis, keys, max_entries=ready.audit_max_entries
                ).record(audit[0], via="cli", **audit[1]):
                    err.print(
                        "[yellow]Warning:[/yellow] done, but the audit entry could not be written."
                    )
                return result
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
    from service.api.server import serve as run
    from service.logs import configure_logging

    settings = _settings(host=host, port=port)
    if settings.listens_beyond_this_machine and settings.public_url is None:
        # Otherwise http://HOST:PORT silently becomes every credential's `iss`, and a
        # credential issued under the wrong `iss` never verifies anywhere else.
        err.print(
            f"Refused: listening on {settings.host}, which other machines can reach, needs "
            "THIQA_PUBLIC_URL: the URL clients use, which becomes every credential's `iss` "
            "and status-list URIs (e.g. THIQA_PUBLIC_URL=https://id.example.ma).",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    configure_logging(settings.log_level)  # JSON lines on stderr from here on
    try:
        keyring = load_keyring(settings)
    except KeyRingError as exc:
        err.print(f"[red]Keys:[/red] {exc}")
        raise typer.Exit(1) from None
    with redis_for(settings) as ready:
        console.print(
            f"Thiqa issuer [bold]{ready.issuer_url}[/bold], signing key "
            f"[cyan]{keyring.active.kid}[/cyan] ({keyring.active.alg})"
        )
        console.print(
            f"API documentation: {ready.issuer_url}/docs"
            + (f"\nBrowser demo: {ready.issuer_url}/demo" if ready.demo_ui else ""),
            highlight=False,
            markup=False,
        )
        if workers > 1:
            assert ready.redis_url is not None
            os.environ["THIQA_REDIS_URL"] = ready.redis_url.get_secret_value()
            os.environ["THIQA_HOST"], os.environ["THIQA_PORT"] = ready.host, str(ready.port)
        run(ready, workers=workers)


@app.command()
def demo(
    citizen: Annotated[
        int | None,
        typer.Option(
            help="Which synthetic citizen of seeds/citizens.json (0 is the first); default: one "
            "at random."
        ),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option(
            help="Keep the demo's keys and Redis data in this folder instead of a temporary one.",
        ),
    ] = None,
) -> None:
    """Walk the trusted verification flow against a live server, step by step."""
    from service.cli.demo import load_citizens, run_demo
    from service.store.embedded import EmbeddedRedisError

    try:
        count = len(load_citizens())
    except FileNotFoundError as exc:
        err.print(f"[red]Demo:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if citizen is not None and not 0 <= citizen < count:
        raise typer.BadParameter(
            f"there are {count} citizens: 0 to {count - 1}", param_hint="--citizen"
        )
    try:
        code = run_demo(console, citizen=citizen, keep=keep)
    except EmbeddedRedisError as exc:
        err.print(f"[red]Redis:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Argument(help="A name for the app, e.g. tax-portal.")],
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: issue, revoke, verify, admin (any client's credentials)."
        ),
    ] = "verify",
    as_json: Annotated[
        bool,
        typer.Option("--json", help='One JSON object: {"name", "scopes", "api_key"}, for scripts.'),
    ] = False,
) -> None:
    """Create a client and print its API key. The key is shown once and stored only hashed."""
    settings = _settings()
    try:
        wanted = parse_scopes(scopes.split(","))
    except ThiqaError as exc:
        err.print(f"[red]{exc.code}:[/red] {exc.detail}")
        raise typer.Exit(2) from None
    key = _run_store(
        settings,
        lambda store: store.add(name, wanted),
        audit=(AuditAction.CLIENT_ADDED, {"client": name, "scopes": wanted}),
    )
    if as_json:
        typer.echo(json.dumps({"name": name, "scopes": sorted(wanted), "api_key": key}))
        return
    console.print(f"Client [bold]{name}[/bold] with scopes {', '.join(sorted(wanted))}.")
    console.print("API key (shown once, keep it secret):")
    console.print(key, markup=False, highlight=False, soft_wrap=True)


@clients_app.command("list")
def clients_list() -> None:
    """List clients and their scopes (never their keys)."""
    clients = _run_store(_settings(), lambda store: store.list(), reading="clients")
    table = Table("name", "scopes", "created")
    from datetime import UTC, datetime

    for client in clients:
        created = datetime.fromtimestamp(client.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        table.add_row(client.name, ", ".join(sorted(client.scopes)), created)
    console.print(table if clients else "No clients yet: thiqa clients add NAME --scopes ...")


@clients_app.command("revoke")
def clients_revoke(name: Annotated[str, typer.Argument(help="The client to remove.")]) -> None:
    """Delete a client; its key stops working immediately."""
    _run_store(
        _settings(),
        lambda store: store.revoke(name),
        audit=(AuditAction.CLIENT_REVOKED, {"client": name}),
    )
    console.print(f"Client [bold]{name}[/bold] revoked.")


def _utc(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


class _Alg(StrEnum):
    ES256 = "ES256"
    EdDSA = "EdDSA"


def _keys_failed(exc: KeyRingError) -> typer.Exit:
    err.print(f"[red]Keys:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(1)


def _audit_keys(settings: Settings, events: list[tuple[AuditAction, str]]) -> None:
    # The single call site for the audit entries of key changes (service/cli/key_audit.py).
    if not record_key_events(settings, events):
        err.print(
            "[yellow]Warning:[/yellow] the key change is made, but its audit entry "
            "could not be written (Redis unavailable)."
        )


def _certifier(settings: Settings) -> Callable[[SigningKey], object] | None:
    """With a development root, a new key gets its certificate before it is published; with
    an imported PKI the operator imports one (thiqa pki import-issuer)."""
    pki = open_pki(settings)
    if not pki.can_issue:
        return None
    return lambda key: pki.certify_issuer_key(
        key, issuer_url=settings.issuer_url, now=int(time.time())
    )


@keys_app.command("show")
def keys_show(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON document: each key with its status and times, and the JWKS.",
        ),
    ] = False,
) -> None:
    """Show the issuer's keys, their status and the published JWKS (never private keys).
    Reads only: on a folder without keys it says so and creates none."""
    settings = _settings()
    try:
        keyring = read_keyring(settings)
    except KeyRingError as exc:
        raise _keys_failed(exc) from None
    if as_json:
        typer.echo(json.dumps(keys_document(keyring, settings), indent=2))
        return
    # One block per key: a table of six columns is unreadable in an 80-column terminal.
    print_lines(console, key_blocks(keyring, settings, console.width))
    console.print("\nPublished (pending, active and retired keys):")
    console.print_json(data=keyring.jwks())


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[
        _Alg | None, typer.Option(help="Algorithm of the new key [THIQA_SIGNING_ALG].")
    ] = None,
    activate_now: Annotated[
        bool,
        typer.Option(
            "--activate-now",
            help="Sign with the new key at once, skipping THIQA_KEY_PUBLISH_SECONDS. Only when "
            "no verifier caches this issuer's JWKS.",
        ),
    ] = False,
) -> None:
    """Add a new signing key, published before it signs.

    The key is in the JWKS at once and signs after THIQA_KEY_PUBLISH_SECONDS (a day by
    default), so verifiers that cache the JWKS learn it first. The key it replaces is then
    retired: it signs nothing new, and what it signed verifies until it expires. Running
    servers pick the change up within a second; no restart."""
    from service.keyring.rotation import rotate

    settings = _settings()
    try:
        entry = rotate(
            settings.keys_dir,
            alg=(alg.value if alg else settings.signing_alg),
            passphrase=key_passphrase(settings),
            publish_seconds=settings.key_publish_seconds,
            activate_now=activate_now,
            certify=_certifier(settings),
        )
    except KeyRingError as exc:
        raise _keys_failed(exc) from None
    if entry.status is KeyStatus.ACTIVE:
        console.print(
            f"New key [cyan]{entry.kid}[/cyan] ({entry.alg}) signs from now on; the "
            "previous key is retired (what it signed keeps verifying)."
        )
        if activate_now:
            console.print(
                "Verifiers that cached the JWKS do not know the new key until they fetch it again."
            )
    else:
        console.print(
            f"New key [cyan]{entry.kid}[/cyan] ({entry.alg}) is published now and "
            f"signs from {_utc(entry.activate_after)}; until then the current key "
            "signs."
        )
    _audit_keys(settings, [(AuditAction.KEY_ROTATED, entry.kid)])


@keys_app.command("revoke")
def keys_revoke(
    kid: Annotated[str, typer.Argument(help="The kid of the key (thiqa keys show).")],
    compromised: Annotated[
        bool, typer.Option("--compromised", help="Confirm the key is compromised: required.")
    ] = False,
) -> None:
    """Revoke a compromised key: what it signed stops verifying (key_revoked).

    The key leaves the JWKS. If it was the signing key, another key signs at once (an
    emergency rotation, with no publication delay): the pending key if there is one, else a
    new THIQA_SIGNING_ALG key. Running servers apply this within a second; no restart."""
    from service.keyring.rotation import revoke

    if not compromised:
        err.print(
            "Refused: only a compromised key is revoked, and then everything it signed stops "
            "verifying. Say so with --compromised.\nTo stop a key signing in the normal "
            "course, rotate instead (thiqa keys rotate): the old key is retired and what it "
            "signed keeps verifying until it expires.",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    settings = _settings()
    try:
        result = revoke(
            settings.keys_dir,
            kid,
            alg=settings.signing_alg,
            passphrase=key_passphrase(settings),
            certify=_certifier(settings),
        )
    except KeyRingError as exc:
        raise _keys_failed(exc) from None
    if result.already:
        console.print(f"Key {kid} was already revoked ({_utc(result.revoked.revoked_at)}).")
        return
    console.print(
        f"Key [cyan]{kid}[/cyan] revoked: credentials it signed fail verification "
        "with key_revoked. Running servers apply this within a second."
    )
    events = [(AuditAction.KEY_REVOKED, kid)]
    if result.replacement is not None:
        origin = "a new key" if result.generated else "the pending key, brought forward"
        console.print(
            f"[cyan]{result.replacement.kid}[/cyan] ({result.replacement.alg}, "
            f"{origin}) signs from now on, with no publication delay."
        )
        events.append((AuditAction.KEY_ROTATED, result.replacement.kid))
    _audit_keys(settings, events)


@keys_app.command("rotate-claims")
def keys_rotate_claims() -> None:
    """Add a new key for sealing offers' parked claims (keys/offer-claims-keys.json).

    The new key seals from now on; the previous one stays to open offers made before, and is
    dropped by a later rotation once THIQA_OFFER_TTL_SECONDS have passed. Running servers use
    it at once; no restart."""
    from service.keyring.offer_claims import rotate_offer_claims_key
    from service.keyring.rotation import require_owner

    settings = _settings()
    try:
        require_owner(settings.keys_dir)
        kid = rotate_offer_claims_key(
            settings.keys_dir, now=int(time.time()), keep_seconds=settings.offer_ttl_seconds
        )
    except KeyRingError as exc:
        raise _keys_failed(exc) from None
    console.print(f"New offer-claims key [cyan]{kid}[/cyan] seals from now on.")


def main() -> None:
    # Named thiqa however it was started (`python -m service.cli`, `python3 run.py thiqa`).
    app(prog_name="thiqa")


__all__ = ["app", "main"]
