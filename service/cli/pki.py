"""``thiqa pki``: the operator's certificates (service/keyring/certificates.py).

A development root made here signs the issuer's and the relying party's certificates for
tests and demonstrations; in production the national PKI issues them and ``import-*`` brings
them in, validated against its root before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.cli.blocks import print_lines
from service.cli.key_view import certificate_blocks
from service.keyring.certificates import (
    CertificateError,
    Pki,
    access_host,
    read_certificates,
    read_private_key,
)
from service.keyring.keyring import KeyRing, KeyRingError, load_or_create, write_index
from service.services.runtime import key_passphrase, load_keyring, open_pki
from service.settings import Settings

__all__ = ["pki_commands"]


def pki_commands(settings: Callable[[], Settings], console: Console, err: Console) -> typer.Typer:
    app = typer.Typer(
        help="X.509 certificates: a development root, the issuer's signing certificates, the "
        "relying-party access certificate, or imports from a national PKI.",
        no_args_is_help=True,
        rich_markup_mode="markdown",
    )

    def failed(exc: Exception) -> typer.Exit:
        err.print(f"[red]PKI:[/red] {escape(str(exc))}", highlight=False)
        return typer.Exit(1)

    def _touch_index(config: Settings) -> None:
        # Rewriting the index makes running servers reload the ring, and with it the chains.
        ring = load_keyring(config)
        write_index(config.keys_dir, list(ring.entries))

    def load_keyring_without_chains(config: Settings) -> KeyRing:
        # Before a certificate is (re)made, the key ring must load even without one.
        return load_or_create(
            config.keys_dir, alg=config.signing_alg, passphrase=key_passphrase(config)
        )

    @app.command("init")
    def init(
        force: Annotated[bool, typer.Option("--force", help="Replace an existing root.")] = False,
    ) -> None:
        """Create a development root CA and certify every issuer key and the relying party
        with it (tests and demonstrations; production certificates come from a PKI)."""
        config = settings()
        pki = open_pki(config)
        now = int(time.time())
        try:
            pki.init(
                common_name=f"Thiqa root ({access_host(config.issuer_url)})", now=now, force=force
            )
            ring = load_keyring_without_chains(config)
            for key in ring.keys.values():
                pki.certify_issuer_key(key, issuer_url=config.issuer_url, now=now)
            pki.issue_access(host=access_host(config.issuer_url), now=now)
            _touch_index(config)
        except (CertificateError, KeyRingError) as exc:
            raise failed(exc) from None
        console.print(f"Root written to {pki.dir / 'root.pem'}; issuer keys and access certified.")

    @app.command("import-issuer")
    def import_issuer(
        kid: Annotated[str, typer.Argument(help="The issuer key (thiqa keys show).")],
        chain: Annotated[Path, typer.Argument(help="PEM chain, leaf first.")],
        root: Annotated[Path, typer.Option(help="The PKI's root (PEM).")],
    ) -> None:
        """Import the signing certificate of one issuer key, issued by a national PKI."""
        config = settings()
        pki = open_pki(config)
        try:
            _adopt_root(pki, root)
            ring = load_keyring_without_chains(config)
            key = ring.keys.get(kid)
            if key is None:
                raise CertificateError(f"no published key with kid {kid} (thiqa keys show)")
            pki.import_issuer_chain(
                key, read_certificates(chain), issuer_url=config.issuer_url, now=int(time.time())
            )
            _touch_index(config)
        except (CertificateError, KeyRingError) as exc:
            raise failed(exc) from None
        console.print(f"Certificate of key {kid} imported; credentials it signs carry x5c.")

    @app.command("import-access")
    def import_access(
        key: Annotated[Path, typer.Argument(help="The request-signing private key (PEM).")],
        chain: Annotated[Path, typer.Argument(help="PEM chain, leaf first.")],
        root: Annotated[Path, typer.Option(help="The PKI's root (PEM).")],
    ) -> None:
        """Import the relying-party access certificate and its key, issued by a PKI."""
        config = settings()
        pki = open_pki(config)
        try:
            _adopt_root(pki, root)
            pki.import_access(
                read_private_key(key, None),
                read_certificates(chain),
                host=access_host(config.issuer_url),
                now=int(time.time()),
            )
        except (CertificateError, KeyRingError) as exc:
            raise failed(exc) from None
        console.print("Access certificate imported; presentation requests are signed with it.")

    @app.command("show")
    def show() -> None:
        """The root, each issuer key's certificate and the access certificate, with expiry."""
        config = settings()
        try:
            ring = load_keyring(config)
            lines = certificate_blocks(open_pki(config), ring, config, console.width)
        except (CertificateError, KeyRingError) as exc:
            raise failed(exc) from None
        print_lines(console, lines)

    return app


def _adopt_root(pki: Pki, root: Path) -> None:
    """Make the one certificate in ``root`` the PKI's root, unless it already is."""
    anchors = read_certificates(root)
    if len(anchors) != 1:
        raise CertificateError(f"{root} must hold exactly one root certificate")
    if not pki.exists or pki.root() != anchors[0]:
        pki.set_root(anchors[0])
