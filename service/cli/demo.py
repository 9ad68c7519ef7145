"""``thiqa demo``: the trusted verification flow, live, one readable step at a time.

A real server on a free port, a real Redis, real HTTP. Three parties take part: the issuing
authority's app, the citizen's wallet (a key pair and the credential) and a verifying app.
Every step states what it expects; the demo exits 0 only if every step behaved.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import segno
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from service.api.server import BackgroundServer, free_port
from service.cli.terminal import plain
from service.core import holder
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.logs import JsonFormatter
from service.services.runtime import load_keyring, open_pki
from service.services.seeds import find_seeds, load_citizens
from service.settings import Settings
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis
from service.wallet.openid4vci import accept
from service.wallet.openid4vp import (
    build_vp_token,
    fetch_request,
    parse_invocation,
    present,
    submit,
)
from service.wallet.store import Wallet, WalletError

__all__ = ["find_seeds", "load_citizens", "run_demo"]

VERIFIER_AUDIENCE = "https://services.example.ma/social-benefits"
SHOWN_CLAIMS = ("given_name", "given_name#ar", "family_name", "family_name#ar")
#: What the verifying app asks for: names in both scripts and the city of birth in Arabic.
REQUESTED = [[name] for name in SHOWN_CLAIMS] + [["place_of_birth", "locality#ar"]]


class _Steps:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.number = 0
        self.failed: list[str] = []

    def title(self, text: str) -> None:
        self.number += 1
        self.console.rule(f"[bold]{self.number}. {text}")

    def expect(self, ok: bool, what: str) -> None:
        mark = "[green]✔[/green]" if ok else "[red]✘[/red]"
        self.console.print(f"{mark} {what}")
        if not ok:
            self.failed.append(f"{self.number}. {what}")


@contextmanager
def _server_log(path: Path) -> Iterator[None]:
    """The server's log lines (JSON, as ``thiqa serve`` writes them) go to ``path`` while the
    demo runs, not between its steps on the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    saved = []
    for name in ("thiqa", "uvicorn"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate, logger.level))
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        handler.close()


@contextmanager
def _environment(keep: Path | None) -> Iterator[Settings]:
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="thiqa-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        settings = base.model_copy(
            update={
                "keys_dir": root / "keys",
                "data_dir": root / "data",
                "host": "127.0.0.1",
                "port": port,
                "public_url": None,
                # Kept small so the demo starts at once; production lists hold a million entries.
                "status_list_size": 1 << 14,
                "redis_prefix": f"demo-{secrets.token_hex(4)}",
            }
        )
        if settings.redis_url is not None:
            yield settings
            return
        with EmbeddedRedis(settings.data_dir, binary=settings.redis_server_bin) as embedded:
            yield settings.with_redis(embedded.url)


async def _create_client(settings: Settings) -> str:
    assert settings.redis_url is not None
    redis = connect(settings.redis_url.get_secret_value())
    try:
        store = ClientStore(redis, KeySpace(settings.redis_prefix))
        return await store.add("demo-app", frozenset(Scope))
    finally:
        await redis.aclose()


def run_demo(console: Console, *, citizen: int | None = None, keep: Path | None = None) -> int:
    steps = _Steps(console)
    citizens = load_citizens()
    person = citizens[citizen if citizen is not None else secrets.randbelow(len(citizens))]
    console.print(
        Panel.fit(
            "[bold]Thiqa (ثقة) demo[/bold]: an issuer offers a national identity credential to a "
            "citizen's wallet (OpenID4VCI), a verifying app asks for some claims (OpenID4VP) and "
            "receives only those, then the issuer suspends, reinstates and revokes it.",
        )
    )
    with _environment(keep) as settings:
        load_keyring(settings)  # first start: generates the issuer key
        api_key = asyncio.run(_create_client(settings))
        wallet = Wallet.open(settings.data_dir / "wallet.json")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = settings.data_dir / "server.log"
        with (
            _server_log(log_path),
            BackgroundServer(settings) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
            ) as http,
        ):
            # The citizen's wallet trusts this relying party's root, as a wallet trusts a
            # national PKI: every presentation request below is signed under it.
            wallet.add_trust(open_pki(settings).root())
            _walk(steps, console, http, person, wallet)
        if keep is not None:
            console.print(f"The server's log is in {log_path}.", highlight=False)
    if steps.failed:
        console.print(
            Panel("\n".join(steps.failed), title="[red]Steps that misbehaved", border_style="red")
        )
        return 1
    console.print(Panel.fit("[green]Every step behaved as expected.[/green]"))
    return 0


def _verdict_table(body: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_row("valid", "[green]true[/green]" if body["valid"] else "[red]false[/red]")
    # Claims and messages are printed as plain text: never markup, no terminal escapes. A
    # verdict that failed before the status check has no status: say so, not "None".
    status = body.get("credential_status")
    table.add_row("status", plain(status) if status else Text("not checked", style="dim"))
    for error in body.get("errors", []):
        table.add_row(
            "error",
            Text.assemble(plain(error["code"], "yellow"), ": ", plain(error["message"])),
        )
    for name, value in (body.get("claims") or {}).items():
        table.add_row(plain(name), plain(json.dumps(value, ensure_ascii=False)))
    return table


def _walk(
    steps: _Steps, console: Console, http: httpx.Client, person: dict[str, Any], wallet: Wallet
) -> None:
    steps.title("The issuer publishes its keys and what it issues")
    meta = http.get("/.well-known/jwt-vc-issuer").json()
    kid = meta["jwks"]["keys"][0]["kid"]
    console.print(f"issuer [bold]{meta['issuer']}[/bold], key id [cyan]{kid}[/cyan]")
    issuer_meta = http.get("/.well-known/openid-credential-issuer").json()
    console.print(
        "OpenID4VCI credential configurations: "
        + ", ".join(issuer_meta["credential_configurations_supported"])
    )
    steps.expect(
        len(meta["jwks"]["keys"]) >= 1 and "d" not in meta["jwks"]["keys"][0],
        "issuer metadata lists public keys only",
    )

    steps.title("The issuing app makes a credential offer for a citizen (OpenID4VCI)")
    console.print(
        f"citizen: {person['given_name']} {person['family_name']} — "
        f"{person['given_name#ar']} {person['family_name#ar']}"
    )
    answer = http.post("/v1/credential-offers", json={"claims": person, "tx_code": True})
    steps.expect(answer.status_code == 201, f"offer created (HTTP {answer.status_code})")
    if answer.status_code != 201:
        return
    offer = answer.json()
    console.print(f"offer link {offer['offer_uri']}")
    console.print(f"PIN, sent to the citizen by another channel: [bold]{offer['tx_code']}[/bold]")
    console.print(_terminal_qr(offer["offer_uri"]), highlight=False)

    steps.title("The citizen's wallet scans the offer; a mistyped PIN is refused")
    wrong = (
        "0" * len(offer["tx_code"])
        if offer["tx_code"] != "0" * len(offer["tx_code"])
        else "1" * len(offer["tx_code"])
    )
    try:
        accept(offer["offer_uri"], wallet=wallet, http=http, pin=wrong)
        steps.expect(False, "a wrong PIN must be refused")
    except WalletError as refused:
        steps.expect("invalid_grant" in str(refused), f"wrong PIN refused ({refused})")
    stored = accept(offer["offer_uri"], wallet=wallet, http=http, pin=offer["tx_code"])
    console.print(
        f"wallet holds credential [cyan]{stored.id}[/cyan] of type {stored.vct}, "
        "bound to a key made for it alone"
    )
    payload = stored.payload()
    console.print(
        f"{len(stored.credential)} characters; in the clear only: "
        f"{', '.join(k for k in payload if k != '_sd')}"
    )
    steps.expect(
        not any(name in payload for name in person),
        "no personal claim is readable without its disclosure",
    )
    info = http.get(f"/v1/credential-offers/{offer['offer_id']}").json()
    credential_id = info.get("credential_id")
    steps.expect(
        info.get("status") == "issued" and bool(credential_id),
        "the issuing app sees the offer redeemed, with the credential's id",
    )
    if not credential_id:
        return

    def ask(claims: list[list[str]], purpose: str) -> dict[str, Any]:
        created: dict[str, Any] = http.post(
            "/v1/presentation-requests", json={"claims": claims, "purpose": purpose}
        ).json()
        return created

    def answer_request(
        created: dict[str, Any], disclose: tuple[tuple[str, ...], ...] | None
    ) -> tuple[Any, dict[str, Any]]:
        result = present(created["wallet_uri"], wallet=wallet, http=http, claims=disclose)
        verdict = http.get(
            f"/v1/presentation-requests/{created['request_id']}", params={"wait": 5}
        ).json()
        body = verdict.get("verdict") or {}
        console.print(_verdict_table(body))
        return result, body

    steps.title("A verifying app asks for the citizen's name and city of birth (OpenID4VP)")
    created = ask(REQUESTED, "Proof of identity for a social benefits application")
    console.print(f"request {created['request_id']}, nonce [cyan]{created['nonce']}[/cyan]")
    console.print(
        f"signed by the access certificate: client_id [cyan]{created['client_id']}[/cyan] "
        "(HAIP 1.0: x509_hash); the answer must be encrypted (direct_post.jwt)"
    )
    console.print(_terminal_qr(created["wallet_uri"]), highlight=False)

    steps.title("An answer sent in the clear to this encrypted request is refused")
    fetched = fetch_request(
        http, parse_invocation(created["wallet_uri"]), trust=wallet.trust_anchors()
    )
    steps.expect(
        fetched.verified_signer and fetched.encryption_jwk is not None,
        "the wallet checked the request's certificate chain and signature",
    )
    clear = build_vp_token(wallet, wallet.get(stored.id), fetched, fetched.paths)
    status, in_clear = submit(http, replace(fetched, encryption_jwk=None), clear)
    steps.expect(
        status == 400 and in_clear.get("code") == "encryption_required",
        "rejected: encryption_required, and the request is not spent",
    )

    steps.title("The wallet answers; it also discloses the birth date, which was not asked")
    disclosed = (*(tuple(path) for path in REQUESTED), ("birthdate",))
    result, body = answer_request(created, disclosed)
    steps.expect(result.accepted and body.get("valid") is True, "the credential is valid")
    steps.expect(
        _paths(body.get("claims") or {}) == {tuple(p) for p in REQUESTED},
        "the verifier received exactly what it asked for: the birth date was dropped",
    )

    steps.title("Someone replays that answer")
    vp_token = build_vp_token(wallet, wallet.get(stored.id), result.request, disclosed)
    status, replayed = submit(http, result.request, vp_token)
    steps.expect(
        status == 400 and replayed.get("code") == "nonce_replayed", "rejected: nonce_replayed"
    )

    steps.title("The issuer suspends the credential, then reinstates it")
    changed = http.post(f"/v1/credentials/{credential_id}/suspend").json()
    steps.expect(changed.get("status") == "suspended", "suspended")
    _, body = answer_request(ask(REQUESTED, "Second check"), None)
    steps.expect(_codes(body) == {"suspended"}, "the next presentation says suspended")
    changed = http.post(f"/v1/credentials/{credential_id}/reinstate").json()
    steps.expect(changed.get("status") == "valid", "reinstated")
    _, body = answer_request(ask(REQUESTED, "Third check"), None)
    steps.expect(body.get("valid") is True, "valid again")

    steps.title("The issuer revokes the credential")
    changed = http.post(f"/v1/credentials/{credential_id}/revoke").json()
    steps.expect(changed.get("status") == "revoked", "revoked")
    _, body = answer_request(ask(REQUESTED, "Fourth check"), None)
    steps.expect(
        not body.get("valid") and _codes(body) == {"revoked"},
        "the very next presentation says revoked",
    )
    again = http.post(f"/v1/credentials/{credential_id}/reinstate")
    steps.expect(again.status_code == 409, "a revoked credential cannot be reinstated (409)")

    def verify(text: str) -> dict[str, Any]:
        answer = http.post(
            "/v1/verify",
            json={"credential": text, "nonce": "demo-nonce", "audience": VERIFIER_AUDIENCE},
        )
        body: dict[str, Any] = answer.json()
        console.print(_verdict_table(body))
        return body

    def presentation() -> str:
        return holder.present(
            stored.credential,
            SHOWN_CLAIMS,
            holder_key=wallet.key(stored.key_id),
            nonce="demo-nonce",
            audience=VERIFIER_AUDIENCE,
            now=int(time.time()),
        )

    steps.title("A forger changes the citizen's name in a disclosure")
    result = verify(_tamper_disclosure(presentation()))
    steps.expect(
        not result["valid"] and "invalid_disclosure" in _codes(result),
        "rejected: invalid_disclosure",
    )
    steps.title("A forger extends the expiry date in the signed part")
    head, rest = presentation().split("~", 1)
    header, body_b64, signature = head.split(".")
    claims = json.loads(b64url_decode(body_b64))
    claims["exp"] += 10 * 365 * 86_400
    edited = b64url_encode(json_dumps(claims).encode())
    result = verify(f"{header}.{edited}.{signature}~{rest}")
    steps.expect(
        not result["valid"] and _codes(result) == {"invalid_signature"},
        "rejected: invalid_signature",
    )
    _mdoc_round_trip(steps, console, http, person, wallet)


def _mdoc_round_trip(
    steps: _Steps, console: Console, http: httpx.Client, person: dict[str, Any], wallet: Wallet
) -> None:
    """The same citizen's ID as an ISO/IEC 18013-5 mdoc: offered, presented, revoked."""
    steps.title("The issuer offers the same ID as an ISO/IEC 18013-5 mdoc (mso_mdoc)")
    answer = http.post(
        "/v1/credential-offers", json={"claims": person, "tx_code": False, "format": "mso_mdoc"}
    )
    steps.expect(answer.status_code == 201, f"mdoc offer created (HTTP {answer.status_code})")
    if answer.status_code != 201:
        return
    offer = answer.json()
    stored = accept(offer["offer_uri"], wallet=wallet, http=http)
    console.print(
        f"wallet holds mdoc [cyan]{stored.id}[/cyan] of docType {stored.vct}, its MSO signed "
        "by a document signer under Thiqa's IACA (GET /mdoc/iaca.pem)"
    )
    namespace = stored.vct
    requested = [[namespace, "given_name_national_character"], [namespace, "birth_date"]]
    steps.title("A verifying app asks for the Arabic given name and the birth date (mso_mdoc)")
    created = http.post(
        "/v1/presentation-requests",
        json={"claims": requested, "purpose": "Age and name check", "format": "mso_mdoc"},
    ).json()
    result = present(created["wallet_uri"], wallet=wallet, http=http)
    body = (
        http.get(f"/v1/presentation-requests/{created['request_id']}", params={"wait": 5})
        .json()
        .get("verdict")
        or {}
    )
    console.print(_verdict_table(body))
    steps.expect(result.accepted and body.get("valid") is True, "the mdoc is valid")
    steps.expect(
        _paths(body.get("claims") or {}) == {tuple(p) for p in requested},
        "the DeviceResponse held exactly the requested elements",
    )
    info = http.get(f"/v1/credential-offers/{offer['offer_id']}").json()
    http.post(f"/v1/credentials/{info.get('credential_id')}/revoke")
    created = http.post(
        "/v1/presentation-requests",
        json={"claims": requested, "purpose": "Second check", "format": "mso_mdoc"},
    ).json()
    present(created["wallet_uri"], wallet=wallet, http=http)
    body = (
        http.get(f"/v1/presentation-requests/{created['request_id']}", params={"wait": 5})
        .json()
        .get("verdict")
        or {}
    )
    console.print(_verdict_table(body))
    steps.expect(_codes(body) == {"revoked"}, "after revocation the mdoc says revoked")


def _terminal_qr(text: str) -> str:
    """The QR code as text a terminal shows, for a phone wallet to scan."""
    buffer = io.StringIO()
    segno.make(text, error="m").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


def _paths(claims: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, value in claims.items():
        if isinstance(value, dict) and value:
            paths |= _paths(value, (*prefix, name))
        else:
            paths.add((*prefix, name))
    return paths


def _codes(result: dict[str, Any]) -> set[str]:
    return {error["code"] for error in result.get("errors", [])}


def _tamper_disclosure(presentation: str) -> str:
    parts = presentation.split("~")
    for i, encoded in enumerate(parts[1:-1], start=1):
        salt, name, _value = json.loads(b64url_decode(encoded))
        if name == "family_name":
            parts[i] = b64url_encode(json_dumps([salt, name, "Forged"]).encode())
            break
    return "~".join(parts)
