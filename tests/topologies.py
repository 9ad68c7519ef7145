"""Real Redis topologies for the suite, started from the ``redis-server`` binary.

* :class:`ClusterGroup`: a Redis Cluster of 3 masters and 3 replicas on local ports.
* :class:`SentinelGroup`: a master, 2 replicas and 3 sentinels watching them.

Each runs in its own temporary folder, with short failure-detection timeouts so a failover
takes about a second or two, and stops every process it started. Nothing here listens on
port 6379 or touches a Redis it did not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.api.server import free_port

__all__ = ["ClusterGroup", "SentinelGroup", "redis_binary", "sync_client"]

#: How long a node may be silent before the cluster or the sentinels call it down (ms).
NODE_TIMEOUT_MS = 1000


def redis_binary() -> str:
    explicit = os.environ.get("THIQA_TEST_REDIS_SERVER_BIN")
    found = explicit or shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary for the topology fixtures")
    return found


def _wait_for(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class _Processes:
    """redis-server processes this group started, by port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._args: dict[int, tuple[str, ...]] = {}

    def restart(self, port: int) -> None:
        """Start a killed server again, as it was (a cluster node rejoins from nodes.conf)."""
        self.start(port, *self._args[port])

    def start(self, port: int, *args: str) -> None:
        self._args[port] = args
        workdir = self.folder / str(port)
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                redis_binary(),
                *args,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
        )

    def start_sentinel(self, port: int, config: str) -> None:
        workdir = self.folder / str(port)
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "sentinel.conf"
        conf.write_text(config)
        self.procs[port] = subprocess.Popen(
            [redis_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
        )

    def kill(self, port: int) -> None:
        """``kill -9``: no shutdown, no last write to disk."""
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()


def _client(port: int) -> redis.Redis:
    # No retries: a refused connection must answer at once while a node is down.
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0))


def _online_replicas(port: int) -> int:
    """Replicas of the master on ``port`` that have finished their first sync: only those
    acknowledge writes (WAIT)."""
    info = _client(port).info("replication")
    return sum(
        1
        for name, value in info.items()
        if name.startswith("slave") and isinstance(value, dict) and value["state"] == "online"
    )


class ClusterGroup:
    """3 masters, each with one replica; ``url`` is a ``redis+cluster://`` URL."""

    def __init__(self, folder: Path) -> None:
        self.ports = [free_port() for _ in range(6)]
        self._procs = _Processes(folder)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> ClusterGroup:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        for port in self.ports:
            self._procs.start(
                port,
                "--cluster-enabled",
                "yes",
                # The bus port, free like the data port (the default, port + 10000, may not be).
                "--cluster-port",
                str(free_port()),
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                # A replica takes over however long it was cut off: the test kills masters.
                "--cluster-replica-validity-factor",
                "0",
            )
        for port in self.ports:
            _wait_for(lambda p=port: _client(p).ping(), 10, f"redis on {port}")
        subprocess.run(
            [
                shutil.which("redis-cli") or "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        _wait_for(self._healthy, 30, "the cluster to be healthy")

    def _healthy(self) -> bool:
        for port in self._procs.procs:
            info = _client(port).cluster("info")
            if info["cluster_state"] != "ok":
                return False
        masters = self.masters()
        return len(masters) == 3 and all(_online_replicas(m) >= 1 for m in masters)

    def masters(self) -> list[int]:
        found = []
        for port in self._procs.procs:
            if _client(port).info("replication")["role"] == "master":
                found.append(port)
        return sorted(found)

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot now."""
        for port in self._procs.procs:
            client = _client(port)
            slot = client.cluster("keyslot", key)
            for start, end, master, *_ in client.cluster("slots"):
                if start <= slot <= end:
                    return int(master[1])
        raise RuntimeError("no master for the slot")

    def replicas_of(self, master: int) -> list[int]:
        found = []
        for port in self._procs.procs:
            info = _client(port).info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master:
                found.append(port)
        return found

    def kill(self, port: int) -> None:
        self._procs.kill(port)

    def restart(self, port: int) -> None:
        self._procs.restart(port)

    def wait_until_serving(self, timeout: float = 30) -> None:
        """Wait for the running nodes to agree the cluster is whole again (after a failover)."""

        def ok() -> bool:
            return all(
                _client(p).cluster("info")["cluster_state"] == "ok" for p in self._procs.procs
            )

        _wait_for(ok, timeout, "the cluster to recover")

    def wait_until_healthy(self, timeout: float = 30) -> None:
        """Wait for 3 masters, each with a replica in sync (after a node came back)."""
        _wait_for(self._healthy, timeout, "the cluster to be healthy again")

    def stop(self) -> None:
        self._procs.stop_all()

    def __enter__(self) -> ClusterGroup:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SentinelGroup:
    """A master, 2 replicas and 3 sentinels (quorum 2); ``url`` is a ``redis+sentinel://``
    URL naming the service ``thiqa``."""

    SERVICE = "thiqa"

    def __init__(self, folder: Path) -> None:
        self.data_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._procs = _Processes(folder)

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.SERVICE}"

    def start(self) -> SentinelGroup:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        master, *replicas = self.data_ports
        self._procs.start(master)
        for port in replicas:
            self._procs.start(port, "--replicaof", "127.0.0.1", str(master))
        _wait_for(lambda: _online_replicas(master) == 2, 20, "both replicas to follow the master")
        for port in self.sentinel_ports:
            self._procs.start_sentinel(
                port,
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {self.SERVICE} 4000\n"
                f"sentinel parallel-syncs {self.SERVICE} 2\n",
            )
        for port in self.sentinel_ports:
            _wait_for(
                lambda p=port: (
                    cast(dict[str, Any], _client(p).sentinel_master(self.SERVICE))[
                        "num-other-sentinels"
                    ]
                    == 2
                ),
                20,
                f"sentinel on {port} to see the others",
            )

    def master(self) -> int:
        address = _client(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(self.SERVICE)
        _, port = cast(tuple[str, int], address)
        return int(port)

    def kill(self, port: int) -> None:
        self._procs.kill(port)

    def stop(self) -> None:
        self._procs.stop_all()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def sync_client(url: str) -> redis.Redis:
    """A blocking client for the topology ``url`` names, for tests to look into Redis."""
    from service.store.connection import parse_redis_url

    topology = parse_redis_url(url)
    if topology.kind == "single":
        return redis.Redis.from_url(url)
    if topology.kind == "cluster":
        host, port = topology.nodes[0]
        return redis.RedisCluster(host=host, port=port)  # type: ignore[return-value]
    sentinel = redis.Sentinel(list(topology.nodes), socket_timeout=2)
    return cast(redis.Redis, sentinel.master_for(topology.service, socket_timeout=2))
