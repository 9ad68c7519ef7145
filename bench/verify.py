"""How fast is a verification? Thiqa's core, the reference library, the HTTP API, and Redis.

Run from the checkout:  .venv/bin/python bench/verify.py

One run measures, on the same machine and the same presentation (a national-ID credential of
9 claims with a recursively disclosable ``place_of_birth``, every claim disclosed, key-bound):

  core       service.core.verify.inspect: parse, signature, 12 disclosures, times, KB-JWT,
             with a Memo as the server has (this credential seen before: the issuer
             signature, holder key, parsed JWT and disclosed claims remembered; key
             choice, times and the KB-JWT checked anew)
  core, cold the same with nothing remembered
  reference  sd_jwt.verifier.SDJWTVerifier (PyPI sd-jwt) on the very same presentation
  http       POST /v1/verify on a live Thiqa (its own process) over a private embedded Redis,
             one client at a time, then 8 clients at once
  redis      the status lookup alone: one EVALSHA round trip, as the verifier makes it

Each row has a warm-up, a cap on iterations and a time budget, so the whole script stays well
under a minute. Latencies are per operation (time.perf_counter_ns); ops/s is operations
completed divided by the wall time of the measured loop. The table is printed and the numbers
are written to bench/core-results.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from jwcrypto.jwk import JWK
from rich.console import Console, JustifyMethod
from rich.table import Table
from sd_jwt.verifier import SDJWTVerifier

from service.api.server import free_port
from service.core import holder
from service.core.keys import generate_signing_key, parse_public_jwk, public_jwk
from service.core.memo import Memo
from service.core.sdjwt import split
from service.core.status_list import StatusValue
from service.core.verify import (
    Expectations,
    Inspection,
    Policy,
    TrustedIssuer,
    conclude,
    inspect,
)
from service.services.seeds import load_citizens
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis
from service.store.status import StatusStore

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "core-results.json"
PREFIX = "bench"
NONCE = "bench-nonce-5Qd2"
AUDIENCE = "https://verifier.bench.example"
CONCURRENCY = 8

#: Synthetic citizen 0 of seeds/citizens.json (never a real person).
CITIZEN: dict[str, Any] = load_citizens()[0]
ENVELOPE = frozenset({"iss", "iat", "exp", "vct", "status", "cnf"})


@dataclass(frozen=True)
class Row:
    name: str
    measures: str
    iterations: int
    concurrency: int
    median_us: float
    p95_us: float
    ops_per_s: float


def percentile(sorted_ns: list[int], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of the samples at or below."""
    rank = max(1, -(-len(sorted_ns) * fraction // 1))
    return sorted_ns[int(rank) - 1] / 1000


def row(name: str, measures: str, latencies: list[int], wall_ns: int, concurrency: int = 1) -> Row:
    ordered = sorted(latencies)
    return Row(
        name=name,
        measures=measures,
        iterations=len(ordered),
        concurrency=concurrency,
        median_us=round(percentile(ordered, 0.5), 1),
        p95_us=round(percentile(ordered, 0.95), 1),
        ops_per_s=round(len(ordered) / (wall_ns / 1e9), 1),
    )


def measure(
    operation: Callable[[], object], *, warmup: int, iterations: int, budget_s: float
) -> tuple[list[int], int]:
    for _ in range(warmup):
        operation()
    latencies: list[int] = []
    start = time.perf_counter_ns()
    deadline = start + int(budget_s * 1e9)
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        operation()
        latencies.append(time.perf_counter_ns() - t0)
        if t0 > deadline:
            break
    return latencies, time.perf_counter_ns() - start


# --- a live Thiqa in its own process ---------------------------------------------------------


class LiveThiqa:
    """``thiqa serve`` as a subprocess, so the load generator does not share its GIL."""

    def __init__(self, workdir: Path, redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
        env.update(
            {
                "THIQA_REDIS_URL": redis_url,
                "THIQA_KEYS_DIR": str(workdir / "keys"),
                "THIQA_DATA_DIR": str(workdir / "data"),
                "THIQA_REDIS_PREFIX": PREFIX,
                "THIQA_HOST": "127.0.0.1",
                "THIQA_PORT": str(self.port),
                "THIQA_LOG_LEVEL": "warning",
                # The per-key limit stays on (its counter shares the auth round trip, as in
                # production), set high enough that the benchmark is not throttled.
                "THIQA_RATE_LIMIT_PER_MINUTE": "1000000",
            }
        )
        self._log = (workdir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(workdir)

    def _wait_ready(self, workdir: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"thiqa serve exited; see {workdir / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("thiqa serve did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def add_api_key(redis_url: str) -> str:
    async def go() -> str:
        client = connect(redis_url)
        try:
            return await ClientStore(client, KeySpace(PREFIX)).add("bench", frozenset(Scope))
        finally:
            await client.aclose()

    return asyncio.run(go())


# --- the rows ------------------------------------------------------------------------------


def bench_core(
    presentation: str, issuer: str, jwks: dict[str, Any], vct: str, *, warm: bool
) -> Row:
    trusted = {
        issuer: TrustedIssuer(
            identifier=issuer,
            keys={k["kid"]: parse_public_jwk(k, kid=k["kid"]) for k in jwks["keys"]},
            types=frozenset({vct}),
        )
    }
    policy, expect, now = Policy(), Expectations(nonce=NONCE, audience=AUDIENCE), int(time.time())
    # As the server verifies: with a Memo, the issuer signature, the holder key, the parsed
    # JWT and the disclosed claims of a credential seen before are remembered; the key
    # choice, times and the KB-JWT are checked anew.
    memo = Memo() if warm else None

    def once() -> Inspection:
        return inspect(
            presentation, trusted=trusted, policy=policy, expect=expect, now=now, memo=memo
        )

    verdict = conclude(once(), StatusValue.VALID)
    if not verdict.valid or verdict.claims != CITIZEN or not verdict.key_bound:
        raise SystemExit(f"core verification failed: {verdict.failures}")
    latencies, wall = measure(once, warmup=200, iterations=4000, budget_s=5)
    if warm:
        return row("core", "core.verify.inspect, no I/O, Memo", latencies, wall)
    return row("core, cold", "core.verify.inspect, no I/O, nothing remembered", latencies, wall)


def bench_reference(presentation: str, issuer: str, jwks: dict[str, Any]) -> Row:
    keys = {k["kid"]: JWK(**k) for k in jwks["keys"]}  # parsed once, as Thiqa's keys are

    def issuer_key(iss: str, header: dict[str, Any]) -> JWK:
        if iss != issuer:
            raise LookupError("unexpected issuer")
        return keys[header["kid"]]

    def once() -> dict[str, Any]:
        verifier = SDJWTVerifier(
            presentation, issuer_key, expected_aud=AUDIENCE, expected_nonce=NONCE
        )
        payload: dict[str, Any] = verifier.get_verified_payload()
        return payload

    payload = once()
    if {k: v for k, v in payload.items() if k not in ENVELOPE} != CITIZEN:
        raise SystemExit("the reference verifier did not return the citizen's claims")
    latencies, wall = measure(once, warmup=100, iterations=3000, budget_s=6)
    return row("reference", "sd-jwt SDJWTVerifier, same input", latencies, wall)


def _verify_request(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/v1/verify", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"/v1/verify answered {response.status_code}")


def bench_http_sequential(url: str, api_key: str, body: dict[str, Any]) -> Row:
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    ) as client:
        answer = client.post("/v1/verify", json=body).json()
        if not answer["valid"] or answer["claims"] != CITIZEN:
            raise SystemExit(f"HTTP verification failed: {answer['errors']}")
        latencies, wall = measure(
            lambda: _verify_request(client, body), warmup=100, iterations=3000, budget_s=8
        )
    return row("http", "POST /v1/verify, sequential", latencies, wall)


def bench_http_concurrent(url: str, api_key: str, body: dict[str, Any]) -> Row:
    per_client, budget_s = 600, 10.0
    start = threading.Barrier(CONCURRENCY + 1)
    results: list[list[int]] = [[] for _ in range(CONCURRENCY)]
    errors: list[BaseException] = []

    def client_loop(slot: int) -> None:
        try:
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
            ) as client:
                for _ in range(20):
                    _verify_request(client, body)
                start.wait()
                deadline = time.perf_counter_ns() + int(budget_s * 1e9)
                for _ in range(per_client):
                    t0 = time.perf_counter_ns()
                    _verify_request(client, body)
                    results[slot].append(time.perf_counter_ns() - t0)
                    if t0 > deadline:
                        break
        except BaseException as exc:  # reported below, after every thread has ended
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    wall = time.perf_counter_ns() - began
    if errors:
        raise SystemExit(f"a concurrent client failed: {errors[0]!r}")
    latencies = [ns for slot in results for ns in slot]
    return row(
        f"http x{CONCURRENCY}",
        "POST /v1/verify, concurrent",
        latencies,
        wall,
        concurrency=CONCURRENCY,
    )


def bench_redis(redis_url: str, status_uri: str, idx: int) -> Row:
    list_id = status_uri.rsplit("/", 1)[1]

    async def run() -> tuple[list[int], int]:
        client = connect(redis_url)
        store = StatusStore(client, KeySpace(PREFIX), list_size=1 << 20)
        try:
            if await store.status_of(list_id, idx) is not StatusValue.VALID:
                raise SystemExit("the status entry is not 'valid'")
            for _ in range(200):
                await store.status_of(list_id, idx)
            latencies: list[int] = []
            start = time.perf_counter_ns()
            deadline = start + 4 * 10**9
            for _ in range(8000):
                t0 = time.perf_counter_ns()
                await store.status_of(list_id, idx)
                latencies.append(time.perf_counter_ns() - t0)
                if t0 > deadline:
                    break
            return latencies, time.perf_counter_ns() - start
        finally:
            await client.aclose()

    latencies, wall = asyncio.run(run())
    return row("redis", "status lookup, one EVALSHA", latencies, wall)


# --- output ----------------------------------------------------------------------------------


def print_table(console: Console, rows: list[Row], context: dict[str, Any]) -> None:
    table = Table(title="Verifying one key-bound national-ID presentation")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("row", "left"),
        ("measures", "left"),
        ("n", "right"),
        ("clients", "right"),
        ("median", "right"),
        ("p95", "right"),
        ("ops/s", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)

    def fmt(us: float) -> str:
        return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"

    for r in rows:
        table.add_row(
            r.name,
            r.measures,
            str(r.iterations),
            str(r.concurrency),
            fmt(r.median_us),
            fmt(r.p95_us),
            f"{r.ops_per_s:,.0f}",
        )
    console.print(table)
    p = context["presentation"]
    console.print(
        f"presentation: {p['bytes']} bytes, {p['disclosures']} disclosures, "
        f"{p['claims']} claims, key-bound; {context['cpu_count']} CPUs, "
        f"load average {context['load_average_1m']} at start, "
        f"Python {context['python']}"
    )


def main() -> int:
    load = os.getloadavg()[0]  # other work on the machine shows up in the tails
    console = Console(width=max(Console().width, 100))  # a pipe would otherwise get 80
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="thiqa-bench-") as tmp:
        workdir = Path(tmp)
        with EmbeddedRedis(workdir / "redis") as redis_server:
            api_key = add_api_key(redis_server.url)
            server = LiveThiqa(workdir, redis_server.url)
            try:
                auth = {"Authorization": f"Bearer {api_key}"}
                wallet = generate_signing_key("ES256")
                issued = (
                    httpx.post(
                        f"{server.url}/v1/credentials",
                        headers=auth,
                        timeout=10,
                        json={"claims": CITIZEN, "holder_jwk": public_jwk(wallet.key)},
                    )
                    .raise_for_status()
                    .json()
                )
                metadata = httpx.get(f"{server.url}/.well-known/jwt-vc-issuer").json()
                presentation = holder.present(
                    issued["credential"],
                    list(CITIZEN),
                    holder_key=wallet,
                    nonce=NONCE,
                    audience=AUDIENCE,
                    now=int(time.time()),
                )
                vct = f"{metadata['issuer']}/types/national-id"
                body = {"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
                status = issued["status"]["status_list"]
                rows = [
                    bench_core(presentation, metadata["issuer"], metadata["jwks"], vct, warm=True),
                    bench_core(presentation, metadata["issuer"], metadata["jwks"], vct, warm=False),
                    bench_reference(presentation, metadata["issuer"], metadata["jwks"]),
                    bench_http_sequential(server.url, api_key, body),
                    bench_http_concurrent(server.url, api_key, body),
                    bench_redis(redis_server.url, status["uri"], status["idx"]),
                ]
            finally:
                server.stop()
    context = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(load, 2),
        "seconds": round(time.monotonic() - started, 1),
        "presentation": {
            "bytes": len(presentation),
            "disclosures": len(split(presentation).disclosures),
            "claims": len(CITIZEN),
            "key_bound": True,
        },
    }
    print_table(console, rows, context)
    RESULTS.write_text(
        json.dumps({**context, "rows": [asdict(r) for r in rows]}, indent=2, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    console.print(f"written to {RESULTS}; took {context['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
