"""Several Thiqa processes on one store, as behind a load balancer: real `thiqa serve`
processes, a real Redis Cluster, nothing shared but Redis and the keys folder.

Every process has the same public URL, that of process B (the "balancer" the phone reaches);
relying parties call A and C directly. An offer made on A is redeemed on B; a presentation
request made on A is answered on B and read by a long-poll on C; a revocation through A is
seen by the next verification on C. Also: `thiqa serve --workers 2` scrapes as one.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.server import free_port
from service.keyring.certificates import Pki
from service.settings import Settings
from service.store.clients import Scope
from service.wallet.openid4vci import accept
from service.wallet.openid4vp import present
from service.wallet.store import Wallet
from tests.conftest import add_client
from tests.topologies import ClusterGroup

pytestmark = pytest.mark.slow

REQUESTED = [["given_name"], ["place_of_birth", "locality"]]


class ThiqaProcess:
    """`thiqa serve` in a process of its own."""

    def __init__(self, env: dict[str, str], port: int, *args: str) -> None:
        self.port = port
        self.prefix = env["THIQA_REDIS_PREFIX"]
        self.url = f"http://127.0.0.1:{port}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", *args],
            env={**env, "THIQA_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 30) -> ThiqaProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"thiqa serve exited with {self._proc.returncode}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("thiqa serve did not become ready")

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)


def node_env(redis_url: str, prefix: str, folder: Path, public_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    env.update(
        THIQA_REDIS_URL=redis_url,
        THIQA_REDIS_PREFIX=prefix,
        THIQA_KEYS_DIR=str(folder / "keys"),  # one keys folder for all, as a shared Secret
        THIQA_DATA_DIR=str(folder / "data"),
        THIQA_HOST="127.0.0.1",
        THIQA_PUBLIC_URL=f"http://127.0.0.1:{public_port}",
        THIQA_STATUS_LIST_SIZE="4096",
        THIQA_DEMO_UI="false",
        THIQA_LOG_LEVEL="warning",
    )
    return env


@pytest.fixture
def three_nodes(redis_cluster: ClusterGroup, tmp_path: Path) -> Iterator[list[ThiqaProcess]]:
    prefix = f"t{secrets.token_hex(6)}"
    ports = [free_port() for _ in range(3)]
    env = node_env(redis_cluster.url, prefix, tmp_path, public_port=ports[1])
    # The first creates the signing key; the others load it.
    first = ThiqaProcess(env, ports[0]).wait_ready()
    nodes = [first, *(ThiqaProcess(env, port) for port in ports[1:])]
    try:
        for node in nodes[1:]:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _client_key(redis_url: str, prefix: str, tmp_path: Path) -> str:
    settings = Settings(redis_url=redis_url, redis_prefix=prefix, keys_dir=tmp_path / "k")
    return add_client(settings, "ministry-app", frozenset(Scope))


def test_offers_presentations_and_revocations_cross_processes(
    three_nodes: list[ThiqaProcess],
    redis_cluster: ClusterGroup,
    tmp_path: Path,
    citizen: dict[str, Any],
) -> None:
    a, b, c = three_nodes
    key = _client_key(redis_cluster.url, a.prefix, tmp_path)
    auth = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=a.url, headers=auth, timeout=10) as on_a,
        httpx.Client(base_url=c.url, headers=auth, timeout=30) as on_c,
        httpx.Client(timeout=10) as phone,  # reaches the public URL: B
    ):
        # An offer made on A is redeemed on B; C sees it issued.
        offer = on_a.post("/v1/credential-offers", json={"claims": citizen, "tx_code": True})
        assert offer.status_code == 201, offer.text
        assert offer.json()["credential_offer_uri"].startswith(f"{b.url}/")  # the phone's way
        wallet = Wallet.open(tmp_path / "wallet.json")
        # The phone trusts the relying party's root: the requests below are signed (HAIP).
        wallet.add_trust(Pki(tmp_path / "keys").root())
        accept(offer.json()["offer_uri"], wallet=wallet, http=phone, pin=offer.json()["tx_code"])
        state = on_c.get(f"/v1/credential-offers/{offer.json()['offer_id']}").json()
        assert state["status"] == "issued"
        credential_id = state["credential_id"]

        # A presentation request made on A, answered on B, read by a long-poll on C.
        def ask() -> tuple[dict[str, Any], dict[str, Any]]:
            request = on_a.post(
                "/v1/presentation-requests", json={"claims": REQUESTED, "purpose": "KYC"}
            ).json()
            polled: dict[str, Any] = {}

            def poll() -> None:
                polled.update(
                    on_c.get(
                        f"/v1/presentation-requests/{request['request_id']}", params={"wait": 20}
                    ).json()
                )

            waiter = threading.Thread(target=poll)
            waiter.start()
            time.sleep(0.5)  # let the long-poll start waiting before the answer
            try:
                present(request["wallet_uri"], wallet=wallet, http=phone)
            finally:
                waiter.join(timeout=25)  # never leave it reading from a closed client
            return request, polled

        _, polled = ask()
        assert polled["state"] == "completed"
        assert polled["verdict"]["valid"] is True
        assert polled["verdict"]["claims"] == {
            "given_name": "Amina",
            "place_of_birth": {"locality": "Fès"},
        }

        # A revocation through A is seen by the very next verification, on C.
        assert on_a.post(f"/v1/credentials/{credential_id}/revoke").status_code == 200
        _, polled = ask()
        assert polled["state"] == "failed"
        assert [e["code"] for e in polled["verdict"]["errors"]] == ["revoked"]


def test_metrics_add_up_across_workers(redis_url: str, tmp_path: Path) -> None:
    prefix = f"t{secrets.token_hex(6)}"
    port = free_port()
    server = ThiqaProcess(
        node_env(redis_url, prefix, tmp_path, public_port=port), port, "--workers", "2"
    )
    try:
        server.wait_ready()
        # New connections each time, so the kernel hands them to either worker.
        for _ in range(40):
            assert httpx.get(f"{server.url}/health").status_code == 200
        line = re.compile(
            r'^thiqa_http_requests_total\{method="GET",route="/health",status="200"\} (\S+)$',
            re.MULTILINE,
        )
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
    finally:
        server.stop()
    # Every scrape, whichever worker answered it, counts all 40 requests.
    assert [float(line.search(s).group(1)) for s in scrapes] == [40.0] * 6  # type: ignore[union-attr]
