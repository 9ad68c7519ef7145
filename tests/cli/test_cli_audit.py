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

from service.api.server import free_port
from service.store.audit import AuditAction, AuditLog

THIQA = [sys.executable, "-m", "service.cli"]
KEY = re.compile(r"thq_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*THIQA, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def env(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> dict[str, str]:
    prefix = f"cliaudit{os.getpid()}{time.monotonic_ns() % 100000}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("THIQA_")}
    yield {
        **base,
        "THIQA_REDIS_URL": redis_url,
        "THIQA_KEYS_DIR": str(tmp_path / "keys"),
        "THIQA_REDIS_PREFIX": prefix,
        "COLUMNS": "250",
    }
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        redis_client.delete(key)


def entry_blocks(text: str) -> list[tuple[str, dict[str, str]]]:
    """``thiqa audit tail``'s blocks: (title line, {field name: value}) in order."""
    blocks: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if line and not line.startswith(" "):
            blocks.append((line, {}))
        elif line.strip():
            name, _, value = line.strip().partition("  ")
            blocks[-1][1][name] = value.strip()
    return blocks


def test_client_events_are_audited_and_tail_prints_them(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
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
    blocks = entry_blocks(tail.stdout)
    assert [title.split()[1:] for title, _ in blocks] == [["client.added"], ["client.revoked"]]
    assert blocks[0][1] == {
        "result": "ok",
        "client": "tax-portal",
        "via": "cli",
        "scopes": "issue,verify",
    }
    assert blocks[1][1] == {"result": "ok", "client": "tax-portal", "via": "cli"}
    assert api_key not in tail.stdout
    assert api_key.split("_", 2)[2] not in tail.stdout  # the whole secret, underscores too

    newest = run(["audit", "tail", "-n", "1"], env)
    assert "client.revoked" in newest.stdout
    assert "client.added" not in newest.stdout


def test_tail_follow_prints_new_entries_until_interrupted(env: dict[str, str]) -> None:
    follower = subprocess.Popen(
        [*THIQA, "audit", "tail", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # let it reach its first blocking read
        assert run(["clients", "add", "late-app"], env).returncode == 0
        lines: queue.Queue[str] = queue.Queue()
        assert follower.stdout is not None
        reader = threading.Thread(
            target=lambda: [lines.put(line) for line in follower.stdout], daemon=True
        )
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
    process = subprocess.Popen(
        [*THIQA, "serve", "--workers", str(workers)],
        env=serve_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
        response = httpx.get(
            f"http://127.0.0.1:{port}/health", headers={"X-Request-ID": "cli-log-check"}
        )
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
    process = subprocess.Popen(
        [*THIQA, "serve"], env=serve_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
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


def test_tail_fits_80_columns_and_prints_json_lines(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    """Every field whole, no line past 80 columns, even with the longest values an entry may
    hold; and --json gives one object per entry, every field named."""
    stream = f"{env['THIQA_REDIS_PREFIX']}:{{audit}}:stream"
    verified = AuditLog.entry_fields(
        AuditAction.CREDENTIAL_VERIFIED,
        via="api",
        client="c" * 64,
        result=["invalid_signature", "expired", "key_binding_required", "revoked"],
        credential_id="0123456789ab.AAAAAAAAAAAAAAAAAAAAAA",
        request_id="r" * 64,
        issuer="https://identity.ministry-of-interior.example.org/issuers/national/v2",
        vct="https://identity.ministry-of-interior.example.org/types/national-id/v2",
        time="2025-06-01T10:00:00.000Z",
    )
    redis_client.xadd(stream, verified)
    assert run(["clients", "add", "tax-portal", "--scopes", "issue,verify"], env).returncode == 0
    narrow = {**env, "COLUMNS": "80"}

    tail = run(["audit", "tail"], narrow)
    assert tail.returncode == 0, tail.stderr
    assert max(len(line) for line in tail.stdout.splitlines()) <= 80
    [(title, _), (added, fields)] = entry_blocks(tail.stdout)
    assert title.startswith("2025-06-01T10:00:00.000Z  credential.verified")
    assert added.split()[1:] == ["client.added"]
    assert fields["client"] == "tax-portal"
    unfolded = "".join(line.strip() for line in tail.stdout.splitlines())
    for value in verified.values():
        assert value in unfolded  # folded, never cut

    as_json = run(["audit", "tail", "--json"], narrow)
    assert as_json.returncode == 0, as_json.stderr
    first, second = (json.loads(line) for line in as_json.stdout.splitlines())
    assert first["action"] == "credential.verified"
    assert first["result"] == ["invalid_signature", "expired", "key_binding_required", "revoked"]
    assert {
        k: first[k]
        for k in ("client", "issuer", "vct", "request_id", "credential_id", "time", "via")
    } == {
        k: verified[k]
        for k in ("client", "issuer", "vct", "request_id", "credential_id", "time", "via")
    }
    assert second["action"] == "client.added"
    assert second["scopes"] == "issue,verify"
    assert [int(part) for part in first["id"].split("-")] < [
        int(part) for part in second["id"].split("-")
    ]

    empty_env = {**narrow, "THIQA_REDIS_PREFIX": env["THIQA_REDIS_PREFIX"] + "empty"}
    nothing = run(["audit", "tail", "--json"], empty_env)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == ""
