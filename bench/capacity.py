"""Capacity figures for SCALING.md: Redis memory per credential, per offer, and the Redis
commands one verification, issuance and revocation cost.

Run from the checkout:  .venv/bin/python bench/capacity.py [--credentials N]

It starts a private redis-server (no persistence, so memory is the data's alone) and a Thiqa
on a background thread, then:

* reserves N status entries (default 200,000) straight through StatusStore on full-size lists
  (THIQA_STATUS_LIST_SIZE's default, 2^20), and reads ``used_memory`` before and after plus
  ``MEMORY USAGE`` of the status bits, allocation bitmap, metadata and a sample of records;
* makes 500 credential offers through the API (the demo citizen's claims, with a PIN) and
  reads ``MEMORY USAGE`` of their hashes;
* counts Redis commands (``INFO commandstats``, after ``CONFIG RESETSTAT``) over 200
  key-bound verifications, 100 issuances and 100 revocations through the HTTP API, audit
  entries included.

The figures are printed and written to bench/capacity.json (overwritten on every run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from service.api.server import BackgroundServer, free_port
from service.core import holder
from service.core.keys import generate_signing_key, public_jwk
from service.settings import Settings
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis
from service.store.status import StatusStore

RESULTS = Path(__file__).with_name("capacity.json")
PREFIX = "cap"
LIST_SIZE = 1 << 20
CITIZEN = json.loads(
    (Path(__file__).resolve().parent.parent / "seeds" / "citizens.json").read_text("utf-8")
)["citizens"][0]


def commands_by_name(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def count_commands(client: redis.Redis, action: Any, times: int) -> dict[str, float]:
    """Redis commands per call of ``action`` (a script's own commands count apart from its
    EVALSHA: commandstats counts each)."""
    client.config_resetstat()
    for _ in range(times):
        action()
    time.sleep(0.5)  # audit entries are written just after each response
    calls = commands_by_name(client)
    # The counting itself (INFO, CONFIG) is not Thiqa's.
    for own in ("info", "config|resetstat", "config"):
        calls.pop(own, None)
    return {name: round(n / times, 2) for name, n in sorted(calls.items())}


async def reserve_many(url: str, count: int) -> list[str]:
    client = connect(url)
    store = StatusStore(client, KeySpace(PREFIX), list_size=LIST_SIZE)
    try:
        # One first, so the list exists before the bursts (of 100, the pool's size).
        ids = [
            (
                await store.reserve(
                    vct="https://id.example/types/national-id",
                    issued_at=1_900_000_000,
                    expires_at=1_900_000_000 + 10 * 365 * 86_400,
                    kid="2026-01-ES256",
                )
            ).credential_id
        ]
        for start in range(1, count, 100):
            batch = await asyncio.gather(
                *(
                    store.reserve(
                        vct="https://id.example/types/national-id",
                        issued_at=1_900_000_000,
                        expires_at=1_900_000_000 + 10 * 365 * 86_400,
                        kid="2026-01-ES256",
                    )
                    for _ in range(min(100, count - start))
                )
            )
            ids += [r.credential_id for r in batch]
        return ids
    finally:
        await client.aclose()


def memory_of_status(plain: redis.Redis, url: str, count: int) -> dict[str, Any]:
    before = int(plain.info("memory")["used_memory"])
    ids = asyncio.run(reserve_many(url, count))
    after = int(plain.info("memory")["used_memory"])
    keys = KeySpace(PREFIX)
    lists = sorted({i.split(".")[0] for i in ids})
    sample = ids[:: max(1, len(ids) // 2000)]
    record_bytes = [int(plain.memory_usage(keys.credential(*i.split("."))) or 0) for i in sample]
    bits = [int(plain.memory_usage(keys.status_bits(x)) or 0) for x in lists]
    used = [int(plain.memory_usage(keys.status_used(x)) or 0) for x in lists]
    meta = [int(plain.memory_usage(keys.status_meta(x)) or 0) for x in lists]
    return {
        "credentials": count,
        "lists": len(lists),
        "used_memory_delta_bytes": after - before,
        "record_bytes_mean": round(sum(record_bytes) / len(record_bytes), 1),
        "status_bits_bytes_per_list": max(bits),
        "allocation_bitmap_bytes_per_list": max(used),
        "list_metadata_bytes": max(meta),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--credentials", type=int, default=200_000)
    options = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="thiqa-capacity-") as tmp:
        folder = Path(tmp)
        with EmbeddedRedis(folder / "redis", durable=False) as embedded:
            plain = redis.Redis.from_url(embedded.url)
            status = memory_of_status(plain, embedded.url, options.credentials)

            settings = Settings(
                redis_url=embedded.url,
                keys_dir=folder / "keys",
                data_dir=folder / "data",
                redis_prefix="capapi",
                port=free_port(),
                demo_ui=False,
                rate_limit_per_minute=0,
            )

            async def add_key() -> str:
                client = connect(embedded.url)
                try:
                    return await ClientStore(client, KeySpace("capapi")).add(
                        "capacity", frozenset(Scope)
                    )
                finally:
                    await client.aclose()

            api_key = asyncio.run(add_key())
            with (
                BackgroundServer(settings) as server,
                httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
                ) as http,
            ):
                offers = [
                    http.post(
                        "/v1/credential-offers", json={"claims": CITIZEN, "tx_code": True}
                    ).json()["offer_id"]
                    for _ in range(500)
                ]
                offer_bytes = [
                    int(plain.memory_usage(KeySpace("capapi").credential_offer(o)) or 0)
                    for o in offers
                ]
                wallet = generate_signing_key("ES256")
                issued = http.post(
                    "/v1/credentials",
                    json={"claims": CITIZEN, "holder_jwk": public_jwk(wallet.key)},
                ).json()
                presentation = holder.present(
                    issued["credential"],
                    list(CITIZEN),
                    holder_key=wallet,
                    nonce="n-1",
                    audience="https://rp.example",
                    now=int(time.time()),
                )
                body = {
                    "credential": presentation,
                    "nonce": "n-1",
                    "audience": "https://rp.example",
                }

                def verify() -> None:
                    assert http.post("/v1/verify", json=body).json()["valid"] is True

                per_verification = count_commands(plain, verify, 200)
                made: list[str] = []

                def issue() -> None:
                    answer = http.post("/v1/credentials", json={"claims": CITIZEN})
                    made.append(answer.json()["credential_id"])

                per_issuance = count_commands(plain, issue, 100)
                pending = iter(made)

                def revoke() -> None:
                    answer = http.post(f"/v1/credentials/{next(pending)}/revoke")
                    assert answer.status_code == 200

                per_revocation = count_commands(plain, revoke, 100)
            plain.close()
    results = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "redis": "redis-server from PATH (see EmbeddedRedis)",
        "seconds": round(time.monotonic() - started, 1),
        "status": status,
        "offer_bytes_mean": round(sum(offer_bytes) / len(offer_bytes), 1),
        "redis_commands_per_verification": per_verification,
        "redis_commands_per_issuance": per_issuance,
        "redis_commands_per_revocation": per_revocation,
    }
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
