"""``thiqa audit tail`` and the CLI's audit entries; ``thiqa serve`` writing JSON logs.

Real processes, as a user runs them, against the suite's real redis-server."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from service.server import free_port

THIQA = [sys.executable, "-m", "service.cli"]
KEY = re.compile(r"thq_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*THIQA, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> dict[str, str]:
    prefix = f"cliaudit{os.getpid()}{time.monotonic_ns() % 100000}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    yield {**base, "THIQA_REDIS_URL": redis_url, "THIQA_KEYS_DIR": str(tmp_path / "keys"),
           "THIQA_REDIS_PREFIX": prefix, "COLUMNS": "250"}
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        redis_client.delete(key)


def test_client_events_are_audited_and_tail_prints_them(env: dict[str, str],
                                                        redis_client: redis.Redis) -> None:
    empty = run(["audit", "tail"], env)
    assert empty.returncode == 0, empty.stderr
    assert "No audit entries yet." in empty.stdout

    added = run(["clients", "add", "tax-portal", "--scopes", "issue,verify"], env)
    assert added.returncode == 0, added.stderr
    [api_key] = KEY.findall(added.stdout)
    assert run(["clients", "revoke", "tax-portal"], env).returncode == 0
    refused = run(["clients", "revoke", "tax-portal"], env)
    assert refused.returncode == 1  # nothing to revoke: nothing recorded

    stream = f"{env['THIQA_REDIS_PREFIX']}:{{audit}}:stream"
    entries = [fields for _id, fields in redis_client.xrange(stream)]
    assert [(e[b"action"], e[b"client"], e[b"via"], e[b"result"]) for e in entries] == [
        (b"client.added", b"tax-portal", b"cli", b"ok"),
        (b"client.revoked", b"tax-portal", b"cli", b"ok"),
    ]
    assert entries[0][b"scopes"] == b"issue,verify"
    assert b"request_id" not in entries[0]

    tail = run(["audit", "tail", "-n", "5"], env)
    assert tail.returncode == 0, tail.stderr
    rows = [line for line in tail.stdout.splitlines() if "tax-portal" in line]
    assert len(rows) == 2
    assert "client.added" in rows[0]
    assert "scopes=issue,verify" in rows[0]
    assert "client.revoked" in rows[1]
    assert api_key not in tail.stdout
    assert api_key.split("_", 2)[2] not in tail.stdout  # the whole secret, underscores too

    newest = run(["audit", "tail", "-n", "1"], env)
    assert "client.revoked" in newest.stdout
    assert "client.added" not in newest.stdout


def test_tail_follow_prints_new_entries_until_interrupted(env: dict[str, str]) -> None:
    follower = subprocess.Popen([*THIQA, "audit", "tail", "--follow"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let it reach its first blocking read
        assert run(["clients", "add", "late-app"], env).returncode == 0
        lines: queue.Queue[str] = queue.Queue()
        assert follower.stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout],
                                  daemon=True)
        reader.start()
        seen = ""
        deadline = time.monotonic() + 15
        while "late-app" not in seen:
            assert time.monotonic() < deadline, f"follow printed nothing new: {seen!r}"
            with contextlib.suppress(queue.Empty):
                seen += lines.get(timeout=0.5)
        assert "client.added" in seen
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
        reader.join(timeout=10)  # it ends at end of output; then the pipe may be closed
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        for stream in (follower.stdout, follower.stderr):
            if stream:
                stream.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_writes_json_log_lines_with_request_ids(env: dict[str, str], workers: int) -> None:
    port = free_port()
    serve_env = {**env, "THIQA_PORT": str(port), "THIQA_LOG_LEVEL": "info"}
    process = subprocess.Popen([*THIQA, "serve", "--workers", str(workers)], env=serve_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "thiqa serve exited"
            assert time.monotonic() < deadline, "thiqa serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{port}/health",
                             headers={"X-Request-ID": "cli-log-check"})
        assert response.headers["x-request-id"] == "cli-log-check"
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # all JSON
    assert lines
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [access] = [line for line in lines if line.get("request_id") == "cli-log-check"]
    assert access["logger"] == "thiqa.access"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/health", 200)
    assert "GET /health HTTP/1.1" not in err  # uvicorn's own access log is off
    assert any(line["logger"].startswith("uvicorn") for line in lines)


def test_serve_respects_log_level(env: dict[str, str]) -> None:
    port = free_port()
    serve_env = {**env, "THIQA_PORT": str(port), "THIQA_LOG_LEVEL": "warning"}
    process = subprocess.Popen([*THIQA, "serve"], env=serve_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "thiqa serve exited"
            assert time.monotonic() < deadline, "thiqa serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert all(line["level"] in ("warning", "error", "critical") for line in lines)
    assert "thiqa.access" not in err
