"""Thiqa beside the anchor (bench/anchor.py), under wrk, on one redis-server.

Run from the checkout:  .venv/bin/python bench/run.py [--seconds 10] [--skip-workers]

Needs ``wrk`` (Debian: ``apt-get install wrk``). Starts a private embedded redis-server
(append-only, ``appendfsync always``, as ``thiqa serve`` does), then for each row starts the
server it measures (``thiqa serve``, or the anchor under uvicorn with the same options), warms
it up, and drives it with wrk at 32 connections; each row drives Thiqa, then the anchor, back
to back. Prints one table, Thiqa and the anchor side by side (requests/s, p50, p99,
non-2xx), and writes ``bench/results.json`` and
``bench/results.md``. It asserts nothing; before timing, it checks that each request really
succeeds (a valid verdict, a 201, a signed list, a credential bound to the wallet's key).

Rows:

* ``verify``: ``POST /v1/verify`` of a key-bound national-ID presentation (12 disclosures,
  nonce and audience) / the anchor's PyJWT ES256 verification of a plain JWT of the same size
  and one Redis GET.
* ``verify batch``: ``POST /v1/verify/batch`` of 100 such presentations / the anchor's batch.
  Requests/s is bodies; presentations/s is 100 times that.
* ``status list``: ``GET /status-lists/{id}`` of a 1,048,576-entry list with 1 % of entries
  revoked / the anchor's Redis GET of a blob of the same size.
* ``verify, status-list storm``: ``verify`` again while a second wrk fetches the status list
  (10 connections, each 35 ms after its last answer: about 200 a second while an answer
  takes about 15 ms; the rate reached is recorded).
* ``issue``: ``POST /v1/credentials`` / the anchor's PyJWT ES256 signature and Redis INCR.
* ``issue (OpenID4VCI credential endpoint)``: the wallet's ``POST /credential`` (access token,
  key proof with a c_nonce) / the anchor's ``/issue`` again. Each request uses up an offer's
  access token and a c_nonce, so each wrk run sends requests prepared for it alone just before
  it (one offer through the API and copies of it in Redis, the wallet's token and nonce
  requests over HTTP, a key proof as the test wallet makes it): one set for the warm-up, then
  one sized from the warm-up's rate.
* ``verify, 2 workers``: ``verify`` with ``--workers 2`` on both sides.

The machine's CPU count and load average are recorded: wrk, Redis and the server share it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import re
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import redis
from anchor import FLAG_KEY, LIST_KEY  # bench/anchor.py, beside this script
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.api.server import free_port
from service.core import holder
from service.core.keys import SigningKey, generate_signing_key, public_jwk
from service.core.openid4vci import PRE_AUTHORIZED_GRANT
from service.core.status_list import redis_offset
from service.keyring.offer_claims import OfferClaimsSealer
from service.services.openid4vci_issuer import tx_code_hash
from service.services.seeds import load_citizens
from service.store.clients import ClientStore, Scope
from service.store.connection import KeySpace, connect
from service.store.embedded import EmbeddedRedis
from service.store.offers import OfferStore, new_secret
from service.wallet.openid4vci import (
    Discovery,
    check_credential,
    discover,
    make_proof,
    new_http,
    read_offer,
    redeem,
)
from service.wallet.store import WalletError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
PREFIX = "bench"
NONCE = "bench-nonce-5Qd2"
AUDIENCE = "https://verifier.bench.example"
CONNECTIONS = 32
#: The CPUs this script may use when it starts.
ALL_CPUS = frozenset(os.sched_getaffinity(0))
#: wrk threads of every run (the connections are shared among them).
THREADS = 2
#: A batch takes about a hundred times as long as one verification: with 32 in flight, most
#: would not finish within a run, and wrk counts only those that do.
BATCH_CONNECTIONS = 4
#: The storm: 10 connections, each fetching the list again 35 ms after its last answer, about
#: 200 fetches a second while an answer takes about 15 ms beside the verifications (the
#: rate reached is recorded).
STORM_CONNECTIONS = 10
STORM_DELAY_MS = 35
BATCH = 100
#: Credential requests are single-use. The warm-up gets this many (2 s at up to 1,500/s);
#: the measured run gets the warm-up's rate, times the margin, plus one per connection (in
#: flight when the run ends).
WARM_CREDENTIAL_REQUESTS = 3000
CREDENTIAL_MARGIN = 2.0
#: Access tokens and key proofs live 300 s (``THIQA_ACCESS_TOKEN_TTL_SECONDS`` can be no more,
#: ``THIQA_C_NONCE_TTL_SECONDS`` bounds a proof's age): the oldest must still be good when the
#: measured run ends.
CREDENTIAL_LIFETIME_S = 300 - 30
#: Wallets preparing requests at once.
PREPARING_WALLETS = 8
LIST_SIZE = 1 << 20
REVOKED_SHARE = 0.01
#: Synthetic citizen 0 of seeds/citizens.json (never a real person).
CITIZEN: dict[str, Any] = load_citizens()[0]


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
def running(
    command: list[str], env: dict[str, str], ready_url: str, log: Path, cpus: frozenset[int]
) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # The server (and any workers it starts) on ``cpus``: see Pinning.
            preexec_fn=functools.partial(os.sched_setaffinity, 0, cpus),
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


def thiqa(
    workdir: Path, redis_url: str, port: int, workers: int, public_url: str, cpus: frozenset[int]
) -> Any:
    """``thiqa serve`` on ``port``; every server of a run has the same ``public_url`` (the
    first one's address): the keys' certificates name it, and credentials issued by one are
    verified by another as the same issuer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    env.update(
        {
            "THIQA_REDIS_URL": redis_url,
            "THIQA_KEYS_DIR": str(workdir / "keys"),
            "THIQA_DATA_DIR": str(workdir / "data"),
            "THIQA_REDIS_PREFIX": PREFIX,
            "THIQA_HOST": "127.0.0.1",
            "THIQA_PORT": str(port),
            "THIQA_PUBLIC_URL": public_url,
            "THIQA_LOG_LEVEL": "warning",
            # The per-key limit stays on (counted in the same round trip as in production),
            # high enough not to throttle the benchmark.
            "THIQA_RATE_LIMIT_PER_MINUTE": "1000000",
            # One presentation serves the whole run, so its KB-JWT may be up to an hour old.
            "THIQA_KB_MAX_AGE_SECONDS": "3600",
        }
    )
    command = [sys.executable, "-m", "service.cli", "serve", "--workers", str(workers)]
    return running(command, env, f"http://127.0.0.1:{port}/health", workdir / "thiqa.log", cpus)


def anchor_server(
    workdir: Path, redis_url: str, port: int, workers: int, public_hex: str, cpus: frozenset[int]
) -> Any:
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
    return running(command, env, f"http://127.0.0.1:{port}/docs", workdir / "anchor.log", cpus)


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
    lua: Script,
    seconds: int,
    connections: int,
    storm: tuple[str, str] | None = None,
) -> tuple[Load, float | None]:
    """Warm up for 2 s, then measure ``seconds``; with ``storm`` (a URL and its script), a
    second wrk fetches it beside the measured one the whole time. Returns the load and the
    storm's fetches per second. With :class:`CredentialRequests`, each of the two runs gets
    single-use requests of its own, made just before it."""
    fresh: CredentialRequests | None = None
    if isinstance(lua, CredentialRequests):
        fresh, script = lua, lua.warm_up(workdir)
    else:
        script = lua
    warm = wrk_command(workdir, url, script, seconds=2, connections=connections, threads=THREADS)
    warmed = subprocess.run(warm, check=True, capture_output=True, text=True).stdout
    if fresh is not None:
        script = fresh.measured(workdir, parse_wrk(warmed), seconds, connections)
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
    command = wrk_command(
        workdir, url, script, seconds=seconds, connections=connections, threads=THREADS
    )
    measured = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    load = parse_wrk(measured)
    if fresh is not None:
        fresh.report(measured)
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


def credential_requests(
    base: str, auth: dict[str, str], redis_url: str, keys_dir: Path
) -> CredentialRequests:
    """The wallet's view of the issuer (its metadata, from an offer), checked with one
    prepared credential request: a 200 with a credential signed by the issuer and bound to
    the key of the proof."""
    with new_http() as http:
        offer = check(
            http.post(f"{base}/v1/credential-offers", headers=auth, json={"claims": CITIZEN}), 201
        )
        discovery = discover(read_offer(offer["offer_uri"], http), http)
        requests = CredentialRequests(base, auth, redis_url, keys_dir, discovery)
        (sample,) = requests.prepare(1)
        answer = check(
            http.post(discovery.credential_endpoint, headers=sample.headers, content=sample.body),
            200,
        )
        try:
            check_credential(
                answer["credentials"][0]["credential"],
                discovery=discovery,
                key=sample.key,
                http=http,
            )
        except WalletError as exc:
            raise SystemExit(f"the credential endpoint's answer does not check: {exc}") from exc
    return requests


def check(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise SystemExit(f"{response.request.url} answered {response.status_code}")
    return response.json() if "json" in response.headers.get("content-type", "") else {}


# --- OpenID4VCI credential requests ----------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One credential request as the wallet sends it, and the key its proof was made with."""

    access_token: str
    body: str
    key: SigningKey

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "Content-Type": "application/json"}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def clone_offers(
    redis_url: str, keys_dir: Path, template: dict[str, Any], count: int
) -> list[tuple[dict[str, Any], str]]:
    """``count`` offers like ``template``, made through the API a moment before: its Redis
    hash written again by the service's own store with a new id, pre-authorized code and
    transaction code, and its claims (checked by the API) opened and sealed again for the new
    id with the service's own sealer. Drawing each one's QR code through the API (about 15 ms
    of Python) would make preparing ten times slower than the endpoint. Returns each offer
    document and its transaction code."""
    template_id = template["offer_id"]
    digits = template["credential_offer"]["grants"][PRE_AUTHORIZED_GRANT]["tx_code"]["length"]
    sealer = OfferClaimsSealer(keys_dir)
    keys = KeySpace(PREFIX)

    async def go() -> list[tuple[dict[str, Any], str]]:
        client = connect(redis_url)
        try:
            raw = await client.hgetall(keys.credential_offer(template_id))
            stored = {_text(k): _text(v) for k, v in raw.items()}
            parked = sealer.open(stored["claims"], offer_id=template_id)
            offers = OfferStore(client, keys)

            async def one() -> tuple[dict[str, Any], str]:
                offer_id = OfferStore.new_offer_id()
                code = new_secret(offer_id)
                pin = "".join(secrets.choice(string.digits) for _ in range(digits))
                document = json.loads(stored["offer"])
                document["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"] = code
                await offers.create(
                    offer_id,
                    code=code,
                    tx_hash=tx_code_hash(code, pin),
                    attempts=int(stored["attempts"]),
                    document=document,
                    sealed_claims=sealer.seal(parked, offer_id=offer_id),
                    expires_at=int(stored["exp"]),
                    client=stored["client"],
                )
                return document, pin

            made: list[tuple[dict[str, Any], str]] = []
            while len(made) < count:
                made += await asyncio.gather(*(one() for _ in range(min(64, count - len(made)))))
            return made
        finally:
            await client.aclose()

    return asyncio.run(go())


#: Hands each wrk thread its own file of prepared requests (``token<TAB>body`` a line), each
#: sent once; ``done()`` prints how many each thread sent. Past the end of its file a thread
#: starts again: those requests are refused (401) and counted as non-2xx.
_SINGLE_USE_LUA = """\
wrk.method = "POST"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
function init(args)
  prepared, sent = {}, 0
  for line in io.lines("%(files)s" .. id .. ".txt") do
    local token, body = line:match("^([^\\t]+)\\t(.+)$")
    prepared[#prepared + 1] = wrk.format(nil, nil, {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
    }, body)
  end
  size = #prepared
end
function request()
  sent = sent + 1
  return prepared[(sent - 1) %% size + 1]
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("single-use: thread %%d sent %%d of %%d\\n",
      thread:get("id"), thread:get("sent"), thread:get("size")))
  end
end
"""


@dataclass
class CredentialRequests:
    """The credential endpoint's wrk scripts. A credential request uses up its access token
    and its c_nonce (a second one is refused, 401 ``invalid_token``), so each run gets
    requests of its own, made just before it: a fixed set for the warm-up, then, for the
    measured run, the warm-up's rate over ``seconds`` with a margin."""

    base: str
    auth: dict[str, str]
    redis_url: str
    keys_dir: Path
    discovery: Discovery
    #: Requests prepared per second, as last seen.
    preparing_rate: float = 0.0

    def prepare(self, count: int) -> list[Prepared]:
        """``count`` credential requests, each made as a wallet makes one: an offer (one
        through the API, the rest copies of it: :func:`clone_offers`), the wallet's token
        request with the transaction code, a c_nonce from the nonce endpoint, and a key proof
        signed with a new key (service/wallet/openid4vci.py); several wallets at once."""
        discovery = self.discovery
        nonce_endpoint = discovery.nonce_endpoint
        if nonce_endpoint is None:
            raise SystemExit("the issuer metadata names no nonce endpoint")
        template = check(
            httpx.post(
                f"{self.base}/v1/credential-offers", headers=self.auth, json={"claims": CITIZEN}
            ),
            201,
        )
        offers = clone_offers(self.redis_url, self.keys_dir, template, count)

        def some(share: list[tuple[dict[str, Any], str]]) -> list[Prepared]:
            made = []
            with new_http() as http:
                for document, pin in share:
                    link = "openid-credential-offer://?" + urlencode(
                        {"credential_offer": json.dumps(document)}
                    )
                    token = redeem(read_offer(link, http), discovery, http, pin)
                    nonce = check(http.post(nonce_endpoint), 200)["c_nonce"]
                    key = generate_signing_key("ES256")  # a new key for each credential
                    proof = make_proof(
                        key, audience=discovery.credential_issuer, nonce=nonce, now=int(time.time())
                    )
                    request = {
                        "credential_configuration_id": discovery.configuration_id,
                        "proofs": {"jwt": [proof]},
                    }
                    made.append(Prepared(token, json.dumps(request), key))
            return made

        shares = [offers[i::PREPARING_WALLETS] for i in range(PREPARING_WALLETS)]
        with ThreadPoolExecutor(PREPARING_WALLETS) as pool:
            return [request for made in pool.map(some, shares) for request in made]

    def script(self, workdir: Path, count: int, seconds: int) -> str:
        began = time.monotonic()
        requests = self.prepare(count)
        took = time.monotonic() - began
        self.preparing_rate = count / took
        if took + seconds > CREDENTIAL_LIFETIME_S:
            raise SystemExit(
                f"{count} credential requests took {took:.0f} s to prepare: the first ones "
                f"would expire during a {seconds} s run; try fewer --seconds"
            )
        files = workdir / f"credential-{secrets.token_hex(4)}-"
        for thread in range(THREADS):
            share = requests[thread::THREADS]
            lines = "".join(f"{r.access_token}\t{r.body}\n" for r in share)
            Path(f"{files}{thread + 1}.txt").write_text(lines, encoding="utf-8")
        print(f"  {count} credential requests prepared in {took:.1f} s", flush=True)
        return _SINGLE_USE_LUA % {"files": files}

    def warm_up(self, workdir: Path) -> str:
        return self.script(workdir, WARM_CREDENTIAL_REQUESTS, 2)

    def measured(self, workdir: Path, warm: Load, seconds: int, connections: int) -> str:
        # Every answer of the warm-up counts, refusals too: if its set ran out, the rate
        # is overestimated, never underestimated.
        rate = warm.requests / 2
        count = int(rate * seconds * CREDENTIAL_MARGIN) + connections
        expected = count / self.preparing_rate
        if expected + seconds > CREDENTIAL_LIFETIME_S:
            raise SystemExit(
                f"{count} credential requests ({rate:.0f}/s in the warm-up) would take about "
                f"{expected:.0f} s to prepare, too long for their tokens; try fewer --seconds"
            )
        return self.script(workdir, count, seconds)

    @staticmethod
    def report(output: str) -> None:
        """How many requests wrk sent, and whether a thread ran out (and sent some again)."""
        threads = [
            (int(sent), int(size))
            for sent, size in re.findall(r"single-use: thread \d+ sent (\d+) of (\d+)", output)
        ]
        if len(threads) != THREADS:
            raise SystemExit(f"wrk did not say how many credential requests it sent:\n{output}")
        again = sum(max(0, sent - size) for sent, size in threads)
        print(
            f"  {sum(sent for sent, _ in threads)} of {sum(size for _, size in threads)} "
            "credential requests sent"
            + (f"; a thread ran out, {again} sent again (refused: non-2xx)" if again else ""),
            flush=True,
        )


#: A wrk script, or the credential endpoint's single-use requests.
Script = str | CredentialRequests
#: A row: its name, Thiqa's URL and script, the anchor's, connections, and the storm's URLs.
Step = tuple[str, tuple[str, Script], tuple[str, Script], int, tuple[str, str] | None]


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
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per side and row, alternating; the table shows each side's median run",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place servers, wrk and Redis"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="ROW",
        help="measure only this row (repeatable; for profiling: writes no results files)",
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/run.py needs wrk: apt-get install wrk")
    server_cpus = ALL_CPUS
    if not options.no_pin and len(ALL_CPUS) >= 2:
        # Pinning: the one-worker server under test gets the first CPU to itself; this
        # script and what it starts after this line (Redis, wrk) share the others.
        server_cpus = frozenset({min(ALL_CPUS)})
        os.sched_setaffinity(0, ALL_CPUS - server_cpus)
    load_before = os.getloadavg()
    started = time.monotonic()
    seconds = options.seconds
    repeat = max(1, options.repeat)
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
            with thiqa(workdir, url, port, 1, base, server_cpus):
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
                credentials = credential_requests(base, auth, url, workdir / "keys")
                token, public_hex = anchor_material(url, list_body)
                with anchor_server(workdir, url, a_port, 1, public_hex, server_cpus):
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
                    plan: list[Step] = [
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
                        (
                            "issue (OpenID4VCI credential endpoint)",
                            (credentials.discovery.credential_endpoint, credentials),
                            (
                                f"{a_base}/issue",
                                _lua("POST", json.dumps({"claims": CITIZEN}), json_only),
                            ),
                            CONNECTIONS,
                            None,
                        ),
                    ]
                    if options.only:
                        plan = [step for step in plan if step[0] in options.only]
                    for name, ours, theirs, connections, storm in plan:
                        storm_lua = _lua("GET", None, {}, delay_ms=STORM_DELAY_MS)
                        runs: list[list[tuple[Load, float | None]]] = [[], []]
                        # Thiqa, anchor, Thiqa, anchor...: drift on the machine meets both.
                        for _ in range(repeat):
                            for side, (target, lua) in enumerate((ours, theirs)):
                                stormed = (storm[side], storm_lua) if storm else None
                                runs[side].append(
                                    drive(workdir, target, lua, seconds, connections, stormed)
                                )
                        (thiqa_load, thiqa_storm), (anchor_load, anchor_storm) = (
                            median_run(r) for r in runs
                        )
                        if storm:
                            assert thiqa_storm is not None
                            assert anchor_storm is not None
                            storms.update(thiqa=thiqa_storm, anchor=anchor_storm)
                        per = BATCH if name == "verify batch" else 1
                        rows.append(Row(name, thiqa_load, anchor_load, per, connections))
                        print(table(rows[-1:]).splitlines()[-1], flush=True)
            if not options.skip_workers and not options.only:
                port2, a_port2 = free_port(), free_port()
                with (
                    # Two workers: every CPU, shared with wrk and Redis as on a real machine.
                    thiqa(workdir, url, port2, 2, base, ALL_CPUS),
                    anchor_server(workdir, url, a_port2, 2, public_hex, ALL_CPUS),
                ):
                    runs = [[], []]
                    for _ in range(repeat):
                        runs[0].append(
                            drive(
                                workdir,
                                f"http://127.0.0.1:{port2}/v1/verify",
                                _lua("POST", verify_body, auth),
                                seconds,
                                CONNECTIONS,
                            )
                        )
                        runs[1].append(
                            drive(
                                workdir,
                                f"http://127.0.0.1:{a_port2}/verify",
                                _lua("POST", json.dumps({"token": token}), json_only),
                                seconds,
                                CONNECTIONS,
                            )
                        )
                    (t2, _), (a2, _) = (median_run(r) for r in runs)
                rows.append(Row("verify, 2 workers", t2, a2))
    load_after = os.getloadavg()
    if options.only:
        print(table(rows))
        return 0
    single = rows[0].thiqa
    context = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "server_cpus": sorted(server_cpus),
        "load_generator_cpus": sorted(ALL_CPUS - server_cpus or ALL_CPUS),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "seconds_per_run": seconds,
        "runs_per_side": repeat,
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


def median_run(runs: list[tuple[Load, float | None]]) -> tuple[Load, float | None]:
    """Of a side's runs, the one with the median requests/s (its latencies with it)."""
    ordered = sorted(runs, key=lambda run: run[0].requests_per_s)
    return ordered[(len(ordered) - 1) // 2]


def urlpath(uri: str) -> str:
    return "/" + uri.split("://", 1)[1].split("/", 1)[1]


if __name__ == "__main__":
    sys.exit(main())
