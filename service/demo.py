"""``thiqa demo``: the trusted verification flow, live, one readable step at a time.

A real server on a free port, a real Redis, real HTTP. Three parties take part: the issuing
authority's app, the citizen's wallet (a key pair and the credential) and a verifying app.
Every step states what it expects; the demo exits 0 only if every step behaved.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from .core import holder
from .core.encoding import b64url_decode, b64url_encode, json_dumps
from .core.keys import generate_signing_key, public_jwk
from .runtime import load_keyring
from .server import BackgroundServer, free_port
from .settings import Settings
from .store.clients import ClientStore, Scope
from .store.connection import KeySpace, connect
from .store.embedded import EmbeddedRedis

__all__ = ["find_seeds", "load_citizens", "run_demo"]

VERIFIER_AUDIENCE = "https://services.example.ma/social-benefits"
SHOWN_CLAIMS = ("given_name", "given_name#ar", "family_name", "family_name#ar")


def find_seeds() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base / "seeds" / "citizens.json"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("seeds/citizens.json not found (run from the Thiqa checkout)")


def load_citizens(path: Path | None = None) -> list[dict[str, Any]]:
    data = json.loads((path or find_seeds()).read_text(encoding="utf-8"))
    return data["citizens"]


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
def _environment(keep: Path | None) -> Iterator[Settings]:
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="thiqa-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        settings = base.model_copy(update={
            "keys_dir": root / "keys",
            "data_dir": root / "data",
            "host": "127.0.0.1",
            "port": port,
            "public_url": None,
            # Kept small so the demo starts at once; production lists hold a million entries.
            "status_list_size": 1 << 14,
            "redis_prefix": f"demo-{secrets.token_hex(4)}",
        })
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


def _payload(credential: str) -> dict[str, Any]:
    return json.loads(b64url_decode(credential.split("~", 1)[0].split(".")[1]))


def run_demo(console: Console, *, citizen: int | None = None, keep: Path | None = None) -> int:
    steps = _Steps(console)
    citizens = load_citizens()
    person = citizens[citizen if citizen is not None else secrets.randbelow(len(citizens))]
    console.print(Panel.fit(
        "[bold]Thiqa (ثقة) demo[/bold]: an issuer signs a national identity credential, the "
        "citizen's wallet shows only some claims to a verifier, bound to its nonce, then the "
        "issuer suspends, reinstates and revokes it.",
    ))
    with _environment(keep) as settings:
        load_keyring(settings)  # first start: generates the issuer key
        api_key = asyncio.run(_create_client(settings))
        with BackgroundServer(settings) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
        ) as http:
            _walk(steps, console, http, person)
    if steps.failed:
        console.print(Panel("\n".join(steps.failed), title="[red]Steps that misbehaved",
                            border_style="red"))
        return 1
    console.print(Panel.fit("[green]Every step behaved as expected.[/green]"))
    return 0


def _verdict_table(body: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_row("valid", "[green]true[/green]" if body["valid"] else "[red]false[/red]")
    table.add_row("status", str(body.get("credential_status")))
    for error in body.get("errors", []):
        table.add_row("error", f"[yellow]{error['code']}[/yellow]: {error['message']}")
    for name, value in (body.get("claims") or {}).items():
        table.add_row(name, json.dumps(value, ensure_ascii=False))
    return table


def _walk(steps: _Steps, console: Console, http: httpx.Client, person: dict[str, Any]) -> None:
    steps.title("The issuer publishes its public key")
    meta = http.get("/.well-known/jwt-vc-issuer").json()
    kid = meta["jwks"]["keys"][0]["kid"]
    console.print(f"issuer [bold]{meta['issuer']}[/bold], key id [cyan]{kid}[/cyan]")
    steps.expect(len(meta["jwks"]["keys"]) >= 1 and "d" not in meta["jwks"]["keys"][0],
                 "issuer metadata lists public keys only")

    steps.title("The citizen's wallet makes a key pair")
    wallet_key = generate_signing_key("ES256")
    console.print(f"wallet key thumbprint [cyan]{wallet_key.kid}[/cyan] (stays on the device)")

    steps.title("The issuing app asks Thiqa for a credential")
    console.print(f"citizen: {person['given_name']} {person['family_name']} — "
                  f"{person['given_name#ar']} {person['family_name#ar']}")
    issued = http.post("/v1/credentials", json={
        "claims": person, "holder_jwk": public_jwk(wallet_key.key),
    })
    steps.expect(issued.status_code == 201, f"credential issued (HTTP {issued.status_code})")
    if issued.status_code != 201:
        return
    body = issued.json()
    credential, credential_id = body["credential"], body["credential_id"]
    payload = _payload(credential)
    entry = body["status"]["status_list"]
    console.print(f"credential id [cyan]{credential_id}[/cyan]; status list entry "
                  f"{entry['idx']} of {entry['uri']}")
    console.print(f"{len(credential)} characters; {credential.count('~') - 1} disclosures; "
                  f"in the clear only: {', '.join(k for k in payload if k != '_sd')}")
    steps.expect(not any(name in payload for name in person),
                 "no personal claim is readable without its disclosure")

    steps.title("A verifying app asks the citizen for their name, with a fresh nonce")
    nonce = secrets.token_urlsafe(16)
    console.print(f"nonce [cyan]{nonce}[/cyan], audience {VERIFIER_AUDIENCE}")

    def presentation(chosen: tuple[str, ...] = SHOWN_CLAIMS) -> str:
        return holder.present(credential, chosen, holder_key=wallet_key, nonce=nonce,
                              audience=VERIFIER_AUDIENCE, now=int(time.time()))

    def verify(text: str, *, with_nonce: str | None = None) -> dict[str, Any]:
        answer = http.post("/v1/verify", json={
            "credential": text, "nonce": with_nonce or nonce, "audience": VERIFIER_AUDIENCE,
        })
        result = answer.json()
        console.print(_verdict_table(result))
        return result

    steps.title("The wallet discloses only the names, signed for that nonce; Thiqa verifies")
    console.print(f"disclosed: {', '.join(SHOWN_CLAIMS)}; kept back: birthdate, national_id, "
                  "place_of_birth, sex, nationality")
    result = verify(presentation())
    steps.expect(result["valid"] is True, "the credential is valid")
    steps.expect(set(result["claims"] or {}) == set(SHOWN_CLAIMS),
                 "the verifier received exactly the disclosed claims")

    steps.title("Someone replays that presentation to a different verifier session")
    result = verify(presentation(), with_nonce=secrets.token_urlsafe(16))
    steps.expect(not result["valid"] and _codes(result) == {"nonce_mismatch"},
                 "rejected: nonce_mismatch")

    steps.title("The issuer suspends the credential, then reinstates it")
    answer = http.post(f"/v1/credentials/{credential_id}/suspend").json()
    steps.expect(answer.get("status") == "suspended", "suspended")
    result = verify(presentation())
    steps.expect(_codes(result) == {"suspended"}, "the next verification says suspended")
    answer = http.post(f"/v1/credentials/{credential_id}/reinstate").json()
    steps.expect(answer.get("status") == "valid", "reinstated")
    result = verify(presentation())
    steps.expect(result["valid"] is True, "valid again")

    steps.title("The issuer revokes the credential")
    answer = http.post(f"/v1/credentials/{credential_id}/revoke").json()
    steps.expect(answer.get("status") == "revoked", "revoked")
    result = verify(presentation())
    steps.expect(not result["valid"] and _codes(result) == {"revoked"},
                 "the very next verification says revoked")
    again = http.post(f"/v1/credentials/{credential_id}/reinstate")
    steps.expect(again.status_code == 409, "a revoked credential cannot be reinstated (409)")

    steps.title("A forger changes the citizen's name in a disclosure")
    forged = _tamper_disclosure(presentation())
    result = verify(forged)
    steps.expect(not result["valid"] and "invalid_disclosure" in _codes(result),
                 "rejected: invalid_disclosure")
    steps.title("A forger extends the expiry date in the signed part")
    head, rest = presentation().split("~", 1)
    header, body_b64, signature = head.split(".")
    claims = json.loads(b64url_decode(body_b64))
    claims["exp"] += 10 * 365 * 86_400
    edited = b64url_encode(json_dumps(claims).encode())
    result = verify(f"{header}.{edited}.{signature}~{rest}")
    steps.expect(not result["valid"] and _codes(result) == {"invalid_signature"},
                 "rejected: invalid_signature")


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
