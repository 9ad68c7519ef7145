"""Thiqa beside the anchor (bench/anchor.py), under wrk, on one redis-server.

Run from the checkout:  .venv/bin/python bench/run.py [--seconds 10] [--skip-workers]

Needs ``wrk`` (Debian: ``apt-get install wrk``). Starts a private embedded redis-server
(append-only, ``appendfsync always``, as ``thiqa serve`` does), then for each row starts the
server it measures (``thiqa serve``, or the anchor under uvicorn with the same options), warms
it up, and drives it with wrk at 32 connections; each row drives Thiqa, then the anchor, back
to back. Prints one table, Thiqa and the anchor side by side (requests/s, p50, p99,
non-2xx), and writes ``bench/results.json`` and
``bench/results.md``. It asserts nothing; before timing, it checks that each request really
succeeds (a valid verdict, a 201, a signed list).

Rows:

* ``verify``: ``POST /v1/verify`` of a key-bound national-ID presentation (12 disclosures,
  nonce and audience) / the anchor's PyJWT ES256 verification of a plain JWT of the same size
  and one Redis GET.
* ``verify batch``: ``POST /v1/verify/batch`` of 100 such presentations / the anchor's batch.
  Requests/s is bodies; presentations/s is 100 times that.
* ``status list``: ``GET /status-lists/{id}`` of a 1,048,576-entry list with 1 % of entries
  revoked / the anchor's Redis GET of a blob of the same size.
* ``verify, status-list storm``: ``verify`` again while a second wrk fetches the status list
  (8 connections, each 35 ms after its last answer: about 200 a second while answers are
  fast; the rate reached is recorded).
* ``issue``: ``POST /v1/credentials`` / the anchor's PyJWT ES256 signature and Redis INCR.
* ``verify, 2 workers``: ``verify`` with ``--workers 2`` on both sides.

The machine's CPU count and load average are recorded: wrk, Redis and the server share it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import redis
from anchor import FLAG_KEY, LIST_KEY  # bench/anchor.py, beside this script
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.api.server import free_port
from service.core import holder
from service.core.keys import generate_signing_key, public_jwk
from service.core.status_list import redis_offset
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
PREFIX = "bench"
NONCE = "bench-nonce-5Qd2"
AUDIENCE = "https://verifier.bench.example"
CONNECTIONS = 32
#: A batch takes about a hundred times as long as one verification: with 32 in flight, most
#: would not finish within a run, and wrk counts only those that do.
BATCH_CONNECTIONS = 4
#: The storm: 8 connections, each fetching the list again 35 ms after its last answer, about
#: 200 fetches a second while answers are fast (the rate reached is recorded).
STORM_CONNECTIONS = 8
STORM_DELAY_MS = 35
BATCH = 100
LIST_SIZE = 1 << 20
REVOKED_SHARE = 0.01
CITIZEN: dict[str, Any] = {
    "given_name": "Amina",
    "given_name#ar": "أمينة",
    "family_name": "El Idrissi",
    "family_name#ar": "الإدريسي",
    "birthdate": "1990-04-12",
    "place_of_birth": {"locality": "Fès", "locality#ar": "فاس", "country": "MA"},
    "sex": "F",
    "national_id": "ZZ104233",
    "nationality": "MA",
}


@dataclass(frozen=True)
class Load:
    """What wrk measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int


@dataclass(frozen=True)
class Row:
    name: str
    thiqa: Load
    anchor: Load
    #: Operations per request (presentations in a batch body).
    per_request: int = 1
    connections: int = CONNECTIONS

    @property
    def ratio(self) -> float:
        return self.thiqa.requests_per_s / self.anchor.requests_per_s


# --- servers -------------------------------------------------------------------------------


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited; see {log}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not start; see {log}")


@contextmanager
def running(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            _wait_ready(ready_url, process, log)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def thiqa(workdir: Path, redis_url: str, port: int, workers: int) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    env.update(
        {
            "THIQA_REDIS_URL": redis_url,
            "THIQA_KEYS_DIR": str(workdir / "keys"),
            "THIQA_DATA_DIR": str(workdir / "data"),
            "THIQA_REDIS_PREFIX": PREFIX,
            "THIQA_HOST": "127.0.0.1",
            "THIQA_PORT": str(port),
            "THIQA_LOG_LEVEL": "warning",
            # The per-key limit stays on (counted in the same round trip as in production),
            # high enough not to throttle the benchmark.
            "THIQA_RATE_LIMIT_PER_MINUTE": "1000000",
            # One presentation serves the whole run, so its KB-JWT may be up to an hour old.
            "THIQA_KB_MAX_AGE_SECONDS": "3600",
        }
    )
    command = [sys.executable, "-m", "service.cli", "serve", "--workers", str(workers)]
    return running(command, env, f"http://127.0.0.1:{port}/health", workdir / "thiqa.log")


def anchor_server(workdir: Path, redis_url: str, port: int, workers: int, public_hex: str) -> Any:
    env = {**os.environ, "ANCHOR_REDIS_URL": redis_url, "ANCHOR_PUBLIC_KEY": public_hex}
    env["PYTHONPATH"] = str(ROOT)
    # The options `thiqa serve` gives uvicorn (service/api/server.py).
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.anchor:create",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-proxy-headers",
        "--no-server-header",
    ]
    return running(command, env, f"http://127.0.0.1:{port}/docs", workdir / "anchor.log")


# --- wrk -------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _lua(method: str, body: str | None, headers: dict[str, str], delay_ms: int = 0) -> str:
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = [==[{body}]==]")
    if delay_ms:
        lines.append(f"function delay() return {delay_ms} end")
    return "\n".join(lines) + "\n"


def wrk_command(
    workdir: Path, url: str, lua: str, *, seconds: int, connections: int, threads: int
) -> list[str]:
    script = workdir / f"wrk-{secrets.token_hex(4)}.lua"
    script.write_text(lua, encoding="utf-8")
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def parse_wrk(output: str) -> Load:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            raise SystemExit(f"wrk printed no {percent}% latency:\n{output}")
        return round(float(match.group(1)) * _UNITS[match.group(2)], 2)

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    if rate is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    failed = int(non_2xx.group(1)) if non_2xx else 0
    if errors:  # connect, read, write or timeout errors count as failed requests too
        failed += sum(int(n) for n in re.findall(r"\d+", errors.group(0)))
    return Load(
        requests_per_s=round(float(rate.group(1)), 1),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        non_2xx=failed,
        requests=int(total.group(1)),
    )


def drive(
    workdir: Path,
    url: str,
    lua: str,
    seconds: int,
    connections: int,
    storm: tuple[str, str] | None = None,
) -> tuple[Load, float | None]:
    """Warm up for 2 s, then measure ``seconds``; with ``storm`` (a URL and its script), a
    second wrk fetches it beside the measured one the whole time. Returns the load and the
    storm's fetches per second."""
    warm = wrk_command(workdir, url, lua, seconds=2, connections=connections, threads=2)
    subprocess.run(warm, check=True, capture_output=True)
    stormer = None
    if storm is not None:
        command = wrk_command(
            workdir,
            storm[0],
            storm[1],
            seconds=seconds + 2,
            connections=STORM_CONNECTIONS,
            threads=1,
        )
        stormer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)
    command = wrk_command(workdir, url, lua, seconds=seconds, connections=connections, threads=2)
    measured = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    load = parse_wrk(measured)
    storm_rate = None
    if stormer is not None:
        out, _ = stormer.communicate(timeout=60)
        storm_rate = parse_wrk(out.decode()).requests_per_s
    return load, storm_rate


# --- setup ---------------------------------------------------------------------------------


def add_api_key(redis_url: str) -> str:
    async def go() -> str:
        client = connect(redis_url)
        try:
            return await ClientStore(client, KeySpace(PREFIX)).add("bench", frozenset(Scope))
        finally:
            await client.aclose()

    return asyncio.run(go())


def revoke_one_percent(redis_url: str, list_id: str) -> int:
    """Mark 1 % of the list's entries revoked directly in Redis (issuing and revoking ten
    thousand credentials through the API would only slow the setup), then bump its version
    as a status change does."""
    keys = KeySpace(PREFIX)
    client = redis.Redis.from_url(redis_url)
    try:
        chosen = {secrets.randbelow(LIST_SIZE) for _ in range(int(LIST_SIZE * REVOKED_SHARE))}
        pipe = client.pipeline(transaction=False)
        for idx in chosen:
            pipe.execute_command(
                "BITFIELD", keys.status_bits(list_id), "SET", "u2", redis_offset(idx, 2), 1
            )
        pipe.hincrby(keys.status_meta(list_id), "version", 1)
        pipe.execute()
        return len(chosen)
    finally:
        client.close()


def anchor_material(redis_url: str, list_body: bytes) -> tuple[str, str]:
    """A plain ES256 JWT about the size of the presentation, its public key (hex point),
    and the anchor's Redis keys."""
    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "https://anchor.example", "claims": CITIZEN, "pad": "x" * 1900}
    token = jwt.encode(claims, key, algorithm="ES256")
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(FLAG_KEY, b"0")
        client.set(LIST_KEY, list_body)
    finally:
        client.close()
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return token, point.hex()


def check(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise SystemExit(f"{response.request.url} answered {response.status_code}")
    return response.json() if "json" in response.headers.get("content-type", "") else {}


# --- output --------------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(rows: list[Row]) -> str:
    head = (
        "| row | Thiqa req/s | anchor req/s | ratio | Thiqa p50 | anchor p50 | Thiqa p99 | "
        "anchor p99 | Thiqa non-2xx | anchor non-2xx |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = []
    for r in rows:
        unit = f" (×{r.per_request}, {r.connections} connections)" if r.per_request > 1 else ""
        lines.append(
            f"| {r.name}{unit} | {_rate(r.thiqa.requests_per_s)} "
            f"| {_rate(r.anchor.requests_per_s)} "
            f"| {r.ratio:.2f} | {r.thiqa.p50_ms:.1f} ms | {r.anchor.p50_ms:.1f} ms "
            f"| {r.thiqa.p99_ms:.1f} ms | {r.anchor.p99_ms:.1f} ms | {r.thiqa.non_2xx} "
            f"| {r.anchor.non_2xx} |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--skip-workers", action="store_true", help="no --workers 2 row")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/run.py needs wrk: apt-get install wrk")
    load_before = os.getloadavg()
    started = time.monotonic()
    seconds = options.seconds
    rows: list[Row] = []
    storms: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="thiqa-bench-") as tmp:
        workdir = Path(tmp)
        with EmbeddedRedis(workdir / "redis") as redis_server:
            url = redis_server.url
            api_key = add_api_key(url)
            auth = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
            json_only = {"Content-Type": "application/json"}
            wallet = generate_signing_key("ES256")
            issue_body = json.dumps(
                {"claims": CITIZEN, "holder_jwk": public_jwk(wallet.key)}, ensure_ascii=False
            )
            port, a_port = free_port(), free_port()
            base, a_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{a_port}"
            with thiqa(workdir, url, port, 1):
                issued = check(
                    httpx.post(f"{base}/v1/credentials", headers=auth, content=issue_body), 201
                )
                presentation = holder.present(
                    issued["credential"],
                    list(CITIZEN),
                    holder_key=wallet,
                    nonce=NONCE,
                    audience=AUDIENCE,
                    now=int(time.time()),
                )
                one = {"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
                verify_body = json.dumps(one)
                batch_body = json.dumps({"presentations": [one] * BATCH})
                list_path = urlpath(issued["status"]["status_list"]["uri"])
                revoked = revoke_one_percent(url, list_path.rsplit("/", 1)[1])
                verdict = check(
                    httpx.post(f"{base}/v1/verify", headers=auth, content=verify_body), 200
                )
                if not verdict["valid"]:
                    raise SystemExit(f"the presentation does not verify: {verdict['errors']}")
                batch = check(
                    httpx.post(f"{base}/v1/verify/batch", headers=auth, content=batch_body), 200
                )
                if not all(v["valid"] for v in batch["verdicts"]):
                    raise SystemExit("the batch does not verify")
                list_body = httpx.get(f"{base}{list_path}").raise_for_status().content
                token, public_hex = anchor_material(url, list_body)
                with anchor_server(workdir, url, a_port, 1, public_hex):
                    anchor_verify = json.dumps({"token": token})
                    check(
                        httpx.post(f"{a_base}/verify", content=anchor_verify, headers=json_only),
                        200,
                    )
                    print(
                        f"Thiqa on {base}, anchor on {a_base}: {len(presentation)}-byte "
                        f"presentation, {len(list_body)}-byte list with {revoked} revoked",
                        flush=True,
                    )
                    # Each row drives Thiqa, then the anchor, back to back: other load on the
                    # machine drifts, and a row's two figures should see the same.
                    plan = [
                        (
                            "verify",
                            (f"{base}/v1/verify", _lua("POST", verify_body, auth)),
                            (f"{a_base}/verify", _lua("POST", anchor_verify, json_only)),
                            CONNECTIONS,
                            None,
                        ),
                        (
                            "verify batch",
                            (f"{base}/v1/verify/batch", _lua("POST", batch_body, auth)),
                            (
                                f"{a_base}/verify/batch",
                                _lua("POST", json.dumps({"tokens": [token] * BATCH}), json_only),
                            ),
                            BATCH_CONNECTIONS,
                            None,
                        ),
                        (
                            "status list (1M entries, 1 % revoked)",
                            (f"{base}{list_path}", _lua("GET", None, {})),
                            (f"{a_base}/list", _lua("GET", None, {})),
                            CONNECTIONS,
                            None,
                        ),
                        (
                            "verify, status-list storm",
                            (f"{base}/v1/verify", _lua("POST", verify_body, auth)),
                            (f"{a_base}/verify", _lua("POST", anchor_verify, json_only)),
                            CONNECTIONS,
                            (f"{base}{list_path}", f"{a_base}/list"),
                        ),
                        (
                            "issue",
                            (f"{base}/v1/credentials", _lua("POST", issue_body, auth)),
                            (
                                f"{a_base}/issue",
                                _lua("POST", json.dumps({"claims": CITIZEN}), json_only),
                            ),
                            CONNECTIONS,
                            None,
                        ),
                    ]
                    for name, ours, theirs, connections, storm in plan:
                        storm_lua = _lua("GET", None, {}, delay_ms=STORM_DELAY_MS)
                        loads = []
                        for side, (target, lua) in enumerate((ours, theirs)):
                            stormed = (storm[side], storm_lua) if storm else None
                            load, storm_rate = drive(
                                workdir, target, lua, seconds, connections, stormed
                            )
                            loads.append(load)
                            if storm_rate is not None:
                                storms["thiqa" if side == 0 else "anchor"] = storm_rate
                        per = BATCH if name == "verify batch" else 1
                        rows.append(Row(name, loads[0], loads[1], per, connections))
                        print(table(rows[-1:]).splitlines()[-1], flush=True)
            if not options.skip_workers:
                port2, a_port2 = free_port(), free_port()
                with (
                    thiqa(workdir, url, port2, 2),
                    anchor_server(workdir, url, a_port2, 2, public_hex),
                ):
                    t2, _ = drive(
                        workdir,
                        f"http://127.0.0.1:{port2}/v1/verify",
                        _lua("POST", verify_body, auth),
                        seconds,
                        CONNECTIONS,
                    )
                    a2, _ = drive(
                        workdir,
                        f"http://127.0.0.1:{a_port2}/verify",
                        _lua("POST", json.dumps({"token": token}), json_only),
                        seconds,
                        CONNECTIONS,
                    )
                rows.append(Row("verify, 2 workers", t2, a2))
    load_after = os.getloadavg()
    single = rows[0].thiqa
    context = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "seconds_per_run": seconds,
        "seconds": round(time.monotonic() - started, 1),
        "presentation_bytes": len(presentation),
        "status_list": {"entries": LIST_SIZE, "revoked": revoked, "bytes": len(list_body)},
        "storm_fetches_per_s": storms,
        "derived": {
            "verify_vs_anchor": round(rows[0].ratio, 2),
            "verify_p99_ms": single.p99_ms,
            "core_vs_reference": "see bench/verify.py",
            "batch_presentations_per_s": round(rows[1].thiqa.requests_per_s * BATCH, 1),
            "batch_vs_single_presentations": round(
                rows[1].thiqa.requests_per_s * BATCH / single.requests_per_s, 2
            ),
            "status_list_fetches_per_s": rows[2].thiqa.requests_per_s,
            "storm_p99_vs_quiet_p99": round(rows[3].thiqa.p99_ms / single.p99_ms, 2),
        },
    }
    markdown = table(rows)
    print(markdown)
    print(json.dumps(context["derived"]), json.dumps(storms))
    print(
        f"load average before {context['load_average_before']}, after "
        f"{context['load_average_after']}; {context['cpu_count']} CPUs"
    )
    RESULTS_JSON.write_text(
        json.dumps(
            {**context, "rows": [{**asdict(r), "ratio": round(r.ratio, 2)} for r in rows]},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    RESULTS_MD.write_text(
        f"Generated {context['generated_at']} on {context['cpu_count']} CPUs "
        f"({context['platform']}), load average {context['load_average_before'][0]} before "
        f"and {context['load_average_after'][0]} after; wrk, {seconds} s per run; status-list "
        f"storm {storms.get('thiqa', 0):.0f} fetches/s (Thiqa), "
        f"{storms.get('anchor', 0):.0f} (anchor).\n\n{markdown}",
        encoding="utf-8",
    )
    return 0


def urlpath(uri: str) -> str:
    return "/" + uri.split("://", 1)[1].split("/", 1)[1]


if __name__ == "__main__":
    sys.exit(main())
