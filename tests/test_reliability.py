"""Reliability under faults and concurrency, with real processes and a real redis-server:
nothing acknowledged is lost, and nothing revoked is ever answered "valid"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.server import BackgroundServer, free_port
from service.settings import Settings
from service.store.clients import Scope
from service.store.embedded import EmbeddedRedis
from tests.conftest import add_client

CITIZEN = {
    "given_name": "Itto",
    "given_name#ar": "إيطو",
    "family_name": "Ouchen",
    "family_name#ar": "أوشن",
    "birthdate": "1979-06-30",
    "national_id": "ZY220417",
}


def _client(server: BackgroundServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_acknowledged_revocation_survives_kill_9_of_redis(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "data", durable=True).start()
    try:
        settings = Settings(
            redis_url=redis.url, keys_dir=tmp_path / "keys", port=free_port(), status_list_size=4096
        )
        key = add_client(settings, "registry", frozenset(Scope))
        with BackgroundServer(settings) as server, _client(server, key) as http:
            issued = http.post("/v1/credentials", json={"claims": CITIZEN}).json()
            revoke = http.post(f"/v1/credentials/{issued['credential_id']}/revoke")
            assert revoke.status_code == 200

            redis.kill()  # SIGKILL: no shutdown, no final flush
            redis.start()
            deadline = time.monotonic() + 5
            while http.get("/ready").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            body = http.post("/v1/verify", json={"credential": issued["credential"]}).json()
            assert [e["code"] for e in body["errors"]] == ["revoked"]
            record = http.get(f"/v1/credentials/{issued['credential_id']}").json()
            assert record["status"] == "revoked"
    finally:
        redis.stop()


def test_revocation_racing_verification_never_valid_after_the_200(
    server: BackgroundServer, api_key: str
) -> None:
    with _client(server, api_key) as http:
        issued = http.post("/v1/credentials", json={"claims": CITIZEN}).json()
    revoked_at: list[float] = []
    results: list[tuple[float, float, bool]] = []
    stop = threading.Event()

    def verify_loop() -> None:
        with _client(server, api_key) as http:
            while not stop.is_set():
                sent = time.monotonic()
                body = http.post("/v1/verify", json={"credential": issued["credential"]}).json()
                results.append((sent, time.monotonic(), body["valid"]))

    def wait_for(condition: Callable[[], bool]) -> None:
        # Waits on what happened, not for a fixed time: a loaded machine only makes it slower.
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    threads = [threading.Thread(target=verify_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(results) >= 4)  # verifications answered before the revocation
    with _client(server, api_key) as http:
        revoke_sent = time.monotonic()
        response = http.post(f"/v1/credentials/{issued['credential_id']}/revoke")
        assert response.status_code == 200
        revoked_at.append(time.monotonic())
    wait_for(lambda: sum(sent > revoked_at[0] for sent, _, _ in list(results)) >= 4)
    stop.set()
    for thread in threads:
        thread.join()
    after = [valid for sent, _, valid in results if sent > revoked_at[0]]
    before = [valid for _, done, valid in results if done < revoke_sent]
    assert after, "no verification was sent after the revocation's 200"
    assert not any(after), "a verification sent after the revocation's 200 said valid"
    assert before
    assert all(before)


@pytest.fixture
def two_server_processes(tmp_path: Path, redis_url: str) -> Iterator[tuple[list[str], str]]:
    prefix = f"multi{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    env.update(
        {
            "THIQA_REDIS_URL": redis_url,
            "THIQA_KEYS_DIR": str(tmp_path / "keys"),
            "THIQA_REDIS_PREFIX": prefix,
            "THIQA_STATUS_LIST_SIZE": "4096",
            "THIQA_PUBLIC_URL": "http://thiqa.test",
        }
    )
    settings = Settings(
        redis_url=redis_url,
        keys_dir=tmp_path / "keys",
        redis_prefix=prefix,
        public_url="http://thiqa.test",
    )
    key = add_client(settings, "registry", frozenset(Scope))
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield urls, key
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def test_server_processes_issuing_at_once_never_share_a_status_index(
    two_server_processes: tuple[list[str], str],
) -> None:
    urls, key = two_server_processes

    def issue(i: int) -> dict[str, Any]:
        with httpx.Client(
            base_url=urls[i % 2], headers={"Authorization": f"Bearer {key}"}, timeout=20
        ) as http:
            response = http.post("/v1/credentials", json={"claims": CITIZEN})
            assert response.status_code == 201
            return response.json()["status"]["status_list"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        refs = list(pool.map(issue, range(200)))
    pairs = {(r["uri"], r["idx"]) for r in refs}
    assert len(pairs) == 200
