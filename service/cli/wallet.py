"""``thiqa wallet``: a wallet for testers, speaking OpenID4VCI to any issuer (Thiqa or not).

It keeps its keys and credentials in one file (``wallet.json`` in ``THIQA_DATA_DIR``, so
``./var/wallet.json`` by default, unless ``--wallet``), mode 0600: a test wallet's keys, not a
citizen's. Every credential gets a new key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from service.cli.terminal import plain
from service.core.display_text import neutralise
from service.settings import Settings
from service.wallet import display
from service.wallet import openid4vp as vp
from service.wallet.openid4vci import accept, new_http
from service.wallet.qr import decode_png, looks_like_png
from service.wallet.status import credential_status
from service.wallet.store import StoredCredential, Wallet, WalletError

__all__ = ["WALLET_FILE", "WalletOption", "open_wallet", "wallet_app"]

#: The wallet's file name inside THIQA_DATA_DIR, beside the embedded Redis's data.
WALLET_FILE = "wallet.json"

wallet_app = typer.Typer(
    help="A test wallet: receive credentials over OpenID4VCI, list them, check their status, "
    "present them over OpenID4VP.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain reflowed help, as for every thiqa command (main.py)
)
console = Console()
err = Console(stderr=True)

WalletOption = Annotated[
    Path | None,
    typer.Option(
        "--wallet",
        help="The wallet file (created on first use, mode 0600). Default: wallet.json in "
        "THIQA_DATA_DIR (./var).",
        show_default=False,
    ),
]


def _default_wallet() -> Path:
    # The same data folder as the server's embedded Redis, so one THIQA_DATA_DIR moves both.
    try:
        return Settings().data_dir / WALLET_FILE
    except ValidationError as exc:
        names = ", ".join(
            "THIQA_" + "_".join(str(part) for part in error["loc"]).upper()
            for error in exc.errors()
        )
        err.print(f"[red]Invalid settings:[/red] {escape(names)}", highlight=False)
        raise typer.Exit(2) from None


def open_wallet(path: Path | None) -> Wallet:
    try:
        return Wallet.open(path if path is not None else _default_wallet())
    except WalletError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    # One line however narrow the terminal (the terminal folds it): easy to read and to grep.
    err.print(
        f"[red]wallet:[/red] {escape(neutralise(str(exc)))}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _date(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


class _Lang(StrEnum):
    EN = "en"
    FR = "fr"
    AR = "ar"


def _get(wallet: Wallet, credential_id: str) -> StoredCredential:
    try:
        return wallet.get(credential_id)
    except WalletError as exc:
        _fail(exc)


@wallet_app.command("accept")
def accept_offer(
    offer: Annotated[
        str,
        typer.Argument(
            help="openid-credential-offer://... URI, an https offer URL, or a PNG of the QR code.",
        ),
    ],
    pin: Annotated[
        str | None,
        typer.Option(
            "--pin",
            help="The transaction code the issuer gave you apart from the QR code.",
        ),
    ] = None,
    wallet_path: WalletOption = None,
) -> None:
    """Receive a credential: fetch the offer and the issuer's metadata, redeem the code, prove
    a new key, and keep the credential once its signature checks out against the issuer's
    published keys."""
    wallet = open_wallet(wallet_path)
    candidate = Path(offer)
    try:
        if "://" not in offer and candidate.is_file():
            if not looks_like_png(candidate):
                raise WalletError(f"{offer} is not a PNG image")
            offer = decode_png(candidate)
        with new_http() as http:
            stored = accept(offer, wallet=wallet, http=http, pin=pin)
    except WalletError as exc:
        _fail(exc)
    claims = display.claims_of(stored)
    latin, arabic = display.names(claims)
    # Everything from the credential is printed through plain(): never markup, no escapes.
    console.print(
        Text.assemble("Received credential ", (stored.id, "bold"), " from ", plain(stored.issuer)),
        highlight=False,
    )
    console.print(Text.assemble("  type     ", plain(stored.vct)), highlight=False)
    if latin or arabic:
        console.print(
            Text.assemble("  holder   ", plain(latin), "  ", plain(arabic)), highlight=False
        )
    console.print(f"  expires  {_date(stored.payload().get('exp'))}", highlight=False)
    console.print(
        f"  bound to a new key {stored.key_id}; wallet {wallet.path}", highlight=False, markup=False
    )


@wallet_app.command("list")
def list_credentials(wallet_path: WalletOption = None) -> None:
    """The credentials in the wallet, with the holder's name in Latin and Arabic script."""
    wallet = open_wallet(wallet_path)
    credentials = wallet.credentials()
    if not credentials:
        console.print(f"No credentials in {wallet.path}: thiqa wallet accept OFFER")
        return
    table = Table("id", "name", "الاسم", "issuer", "type", "expires")
    table.columns[0].no_wrap = True  # an id is typed into `wallet show`: never cut it
    for stored in credentials:
        try:
            latin, arabic = display.names(display.claims_of(stored))
        except WalletError:
            latin, arabic = "(unreadable)", ""
        table.add_row(
            plain(stored.id),
            plain(latin),
            plain(arabic),
            plain(stored.issuer),
            plain(stored.vct),
            plain(_date(stored.payload().get("exp"))),
        )
    console.print(table)


@wallet_app.command("show")
def show_credential(
    credential_id: Annotated[str, typer.Argument(help="Its id (or a unique prefix).")],
    lang: Annotated[_Lang, typer.Option(help="Language of the labels.")] = _Lang.EN,
    wallet_path: WalletOption = None,
) -> None:
    """Every claim of one credential with its label (from the type's metadata), the issuer,
    the type and the validity."""
    wallet = open_wallet(wallet_path)
    stored = _get(wallet, credential_id)
    try:
        claims = display.claims_of(stored)
    except WalletError as exc:
        _fail(exc)
    with new_http(timeout=5) as http:
        labels = display.type_labels(stored.vct, http)
    payload = stored.payload()
    console.print(f"Credential [bold]{stored.id}[/bold]", highlight=False)
    for name, value in (
        ("issuer", stored.issuer),
        ("type", stored.vct),
        ("issued", _date(payload.get("iat"))),
        ("expires", _date(payload.get("exp"))),
        ("received", _date(stored.received_at)),
        ("key", stored.key_id),
    ):
        console.print(Text.assemble(f"  {name:<9}", plain(value)), highlight=False)
    columns = ["claim", "label"] + (["التسمية"] if lang != "ar" else []) + ["value"]
    table = Table(*columns)
    # In the order the type's metadata lists its claims (digests are sorted, so the
    # credential's own order says nothing).
    order = {path: i for i, path in enumerate(labels)}
    rows = sorted(display.claim_rows(claims), key=lambda row: order.get(row[0], len(order)))
    for path, value in rows:
        # Labels come from the type's metadata, fetched from the vct URL: as untrusted as
        # the values.
        row = [plain(".".join(str(p) for p in path)), plain(display.labels_for(path, labels, lang))]
        if lang != "ar":
            row.append(plain(display.labels_for(path, labels, "ar")))
        row.append(plain(value))
        table.add_row(*row)
    console.print(table)


@wallet_app.command("status")
def show_status(
    credential_id: Annotated[str, typer.Argument(help="Its id (or a unique prefix).")],
    wallet_path: WalletOption = None,
) -> None:
    """Fetch the credential's status list, verify it with the issuer's published keys, and
    say whether the credential is valid, suspended or revoked."""
    wallet = open_wallet(wallet_path)
    stored = _get(wallet, credential_id)
    try:
        with new_http() as http:
            status = credential_status(stored, http)
    except WalletError as exc:
        _fail(exc)
    colour = {"valid": "green", "suspended": "yellow", "revoked": "red"}.get(status, "white")
    console.print(f"{stored.id}: [{colour}]{status}[/{colour}]", highlight=False)


def _printable(text: str) -> str:
    # A verifier's text goes to a terminal: no escape sequences, no line tricks.
    return neutralise(text)


trust_app = typer.Typer(
    help="The relying parties this wallet answers signed requests from: their roots.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
wallet_app.add_typer(trust_app, name="trust")


@trust_app.command("add")
def trust_add(
    root: Annotated[Path, typer.Argument(help="A root certificate (PEM), e.g. keys/pki/root.pem.")],
    wallet_path: WalletOption = None,
) -> None:
    """Trust relying-party access certificates issued under ROOT: a signed presentation
    request is answered only when its certificate chains to a trusted root."""
    from cryptography import x509

    wallet = open_wallet(wallet_path)
    try:
        certificates = x509.load_pem_x509_certificates(root.read_bytes())
    except (OSError, ValueError) as exc:
        _fail(WalletError(f"{root} is not a PEM certificate ({type(exc).__name__})"))
    for certificate in certificates:
        wallet.add_trust(certificate)
    wallet.save()
    console.print(f"Trusted {len(certificates)} root(s) for presentation requests.")


@trust_app.command("list")
def trust_list(wallet_path: WalletOption = None) -> None:
    """The roots this wallet trusts for signed presentation requests."""
    wallet = open_wallet(wallet_path)
    for certificate in wallet.trust_anchors():
        console.print(
            f"{_printable(certificate.subject.rfc4514_string())}  until "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}",
            highlight=False,
            markup=False,
        )


@wallet_app.command("present")
def present_credential(
    request: Annotated[
        str,
        typer.Argument(
            help="openid4vp://... URI, an https request URI, or a PNG of the QR code.",
        ),
    ],
    claims: Annotated[
        str | None,
        typer.Option(
            "--claims",
            help="Disclose these instead of what was asked, e.g. "
            "given_name,place_of_birth.locality (to test a verifier's checks).",
        ),
    ] = None,
    credential_id: Annotated[
        str | None,
        typer.Option(
            "--credential",
            help="Present this credential (id or unique prefix) instead of the "
            "newest one that matches.",
        ),
    ] = None,
    wallet_path: WalletOption = None,
) -> None:
    """Answer a presentation request (OpenID4VP 1.0): fetch it, show who asks and why, and
    send a presentation disclosing exactly the requested claims, bound to the verifier's
    nonce and client id, by direct_post. Exits 1 if the verifier refuses it."""
    wallet = open_wallet(wallet_path)
    candidate = Path(request)
    try:
        if "://" not in request and candidate.is_file():
            if not looks_like_png(candidate):
                raise WalletError(f"{request} is not a PNG image")
            request = decode_png(candidate)
        chosen = vp.parse_claims(claims) if claims is not None else None
        with new_http() as http:
            result = vp.present(
                request, wallet=wallet, claims=chosen, credential_id=credential_id, http=http
            )
    except WalletError as exc:
        _fail(exc)
    asked = result.request
    who = asked.client_name or asked.client_id
    signer = "signed, certificate trusted" if asked.verified_signer else "unsigned"
    console.print(
        f"Request from {_printable(who)} ({_printable(asked.client_id)}; {signer})",
        highlight=False,
        markup=False,
    )
    if asked.purpose:
        console.print(f"  purpose    {_printable(asked.purpose)}", highlight=False, markup=False)
    console.print(
        f"  asks for   {_printable(vp.describe(asked.paths))}", highlight=False, markup=False
    )
    console.print(
        f"Presented {result.credential_id}, disclosing {_printable(vp.describe(result.disclosed))}",
        highlight=False,
        markup=False,
    )
    if result.accepted:
        console.print("[green]Accepted[/green] by the verifier.")
        return
    codes = [e.get("code") for e in result.body.get("errors") or [] if isinstance(e, dict)]
    code = result.body.get("code") or result.body.get("error") or "refused"
    detail = f" ({', '.join(str(c) for c in codes)})" if codes else ""
    err.print(
        f"[red]Refused[/red] (HTTP {result.status}): {_printable(str(code))}{_printable(detail)}",
        highlight=False,
    )
    raise typer.Exit(1)
