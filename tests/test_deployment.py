"""The container deployment (Dockerfile, docker-compose.yml, .dockerignore) read as data.

No Docker engine is needed: these tests parse the files and check them against the code they
deploy, above all that every THIQA_* variable they set is a real :class:`Settings` field
(pydantic-settings silently ignores an unknown one, so a typo would go unnoticed) and that the
values validate.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTINGS_VARIABLES = {f"THIQA_{name.upper()}" for name in Settings.model_fields}
KEYS_DIR = "/var/lib/thiqa/keys"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside the container, on purpose
TMPFS = "/tmp"  # noqa: S108 - a tmpfs the compose file mounts, not a file we write


# --- reading the files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def api(services: dict[str, Any]) -> dict[str, Any]:
    return services["api"]


@pytest.fixture(scope="module")
def redis_service(services: dict[str, Any]) -> dict[str, Any]:
    return services["redis"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, in either Compose form (mapping or ``KEY=VALUE`` list)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def with_defaults(value: str) -> str:
    """Compose interpolation with nothing set in the shell: ``${VAR:-default}`` -> default."""
    substituted = _INTERPOLATION.sub(lambda m: m.group("default") or "", value)
    return substituted.replace("$$", "$")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            for pair in shlex.split(args):
                assert "=" in pair, f"use the ENV KEY=VALUE form, not {args!r}"
                key, value = pair.split("=", 1)
                env[key] = value
    return env


def only(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


def effective_api_environment(api: dict[str, Any]) -> dict[str, str]:
    """What the api container sees: the image's ENV, overridden by compose's environment."""
    env = dockerfile_env()
    env.update({k: with_defaults(v) for k, v in environment(api).items()})
    return env


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_has_api_and_redis_and_no_version_key(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"api", "redis"}
    assert "version" not in compose  # obsolete in the Compose Specification


def test_redis_logs_and_fsyncs_every_write(redis_service: dict[str, Any]) -> None:
    assert redis_service["image"] == "redis:7.2-alpine"
    command = redis_service["command"]
    assert command[:2] == ["sh", "-c"]
    # The script ends by exec-ing redis-server (PID 1 gets SIGTERM) on its ACL file.
    server = shlex.split(command[2].rsplit("&& exec ", 1)[1])
    assert server[:2] == ["redis-server", "/tmp/users.conf"]  # noqa: S108 - the tmpfs
    options = dict(zip(server[2::2], server[3::2], strict=True))
    assert options == {"--appendonly": "yes", "--appendfsync": "always", "--save": ""}
    assert redis_service["tmpfs"] == [TMPFS]


def test_redis_is_not_published(redis_service: dict[str, Any]) -> None:
    assert "ports" not in redis_service


def test_both_services_have_healthchecks(
    api: dict[str, Any], redis_service: dict[str, Any]
) -> None:
    redis_test = redis_service["healthcheck"]["test"]
    assert redis_test[0] in {"CMD", "CMD-SHELL"}
    assert "redis-cli --no-auth-warning --user healthcheck --pass - ping" in redis_test[1]

    api_test = api["healthcheck"]["test"]
    assert api_test[:3] == ["CMD", "python", "-c"]
    assert "urllib.request" in api_test[3]
    assert "http://127.0.0.1:%s/health" in api_test[3]
    assert "os.environ.get('THIQA_PORT', '8000')" in api_test[3]


def test_named_volumes_are_declared_and_used(
    compose: dict[str, Any], api: dict[str, Any], redis_service: dict[str, Any]
) -> None:
    assert set(compose["volumes"]) == {"thiqa-keys", "redis-data"}
    assert f"thiqa-keys:{KEYS_DIR}" in api["volumes"]
    assert "redis-data:/data" in redis_service["volumes"]


def test_api_waits_for_a_healthy_redis(api: dict[str, Any]) -> None:
    assert api["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_api_is_hardened_and_restarts(api: dict[str, Any], redis_service: dict[str, Any]) -> None:
    assert api["build"] == "."
    assert api["read_only"] is True
    assert api["tmpfs"] == [TMPFS]
    assert api["restart"] == redis_service["restart"] == "unless-stopped"


def test_compose_sets_only_real_settings(api: dict[str, Any], services: dict[str, Any]) -> None:
    named = {
        key
        for service in services.values()
        for key in environment(service)
        if key.startswith("THIQA_")
    }
    assert named == {
        "THIQA_REDIS_URL",
        "THIQA_PUBLIC_URL",
        "THIQA_HOST",
        "THIQA_PORT",
        "THIQA_KEYS_DIR",
        "THIQA_KEY_PASSPHRASE_FILE",
        "THIQA_REDIS_PASSWORD_FILE",
        "THIQA_DEMO_UI",
    }
    assert not Settings.unknown_variables(dict.fromkeys(named, "")), named


def test_api_uses_the_redis_service(api: dict[str, Any], services: dict[str, Any]) -> None:
    url = environment(api)["THIQA_REDIS_URL"]
    assert url == "redis://thiqa@redis:6379/0"
    assert url.split("@", 1)[1].split(":", 1)[0] in services


def test_published_port_is_the_port_thiqa_listens_on(api: dict[str, Any]) -> None:
    env = effective_api_environment(api)
    assert env["THIQA_PORT"] == "8000"
    assert api["ports"] == [f"127.0.0.1:{env['THIQA_PORT']}:{env['THIQA_PORT']}"]


def test_compose_environment_validates_as_settings(
    api: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("THIQA_"):
            monkeypatch.delenv(name)
    # The secrets as compose mounts them; the public URL as the operator must give it.
    (tmp_path / "redis_password").write_text("pw-from-secret\n")
    (tmp_path / "key_passphrase").write_text("passphrase-from-secret\n")
    monkeypatch.setenv("THIQA_PUBLIC_URL", "https://id.example.ma")
    for name, value in effective_api_environment(api).items():
        if name.startswith("THIQA_") and name != "THIQA_PUBLIC_URL":
            monkeypatch.setenv(name, value.replace("/run/secrets", str(tmp_path)))

    settings = Settings(_env_file=None)

    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://thiqa:pw-from-secret@redis:6379/0"
    assert settings.host == ALL_INTERFACES
    assert settings.port == 8000
    assert settings.keys_dir == Path(KEYS_DIR)
    assert settings.data_dir == Path("/var/lib/thiqa/data")
    assert settings.issuer_url == "https://id.example.ma"
    assert settings.key_passphrase is not None
    assert settings.key_passphrase.get_secret_value() == "passphrase-from-secret"
    assert settings.demo_ui is False  # the tester's page is off in a deployment


def test_interpolation_defaults() -> None:
    assert with_defaults("${A:-http://x:1}") == "http://x:1"
    assert with_defaults("${A-y}/${B:-}") == "y/"
    assert with_defaults("$$HOME") == "$HOME"


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_base_and_install() -> None:
    assert only("FROM") == ["python:3.11-slim"]
    installs = [args for args in only("RUN") if "pip install" in args]
    assert len(installs) == 2
    # First the locked dependencies, every one checked against its hashes ...
    assert installs[0] == (
        "pip install --require-hashes --no-deps -r /tmp/thiqa-src/requirements.lock"
    )
    # ... then Thiqa alone, fetching nothing more; its seeds found in the installed package.
    assert "pip install --no-deps --no-build-isolation /tmp/thiqa-src " in installs[1]
    assert "find_seeds()" in installs[1]
    for install in installs:
        assert "[test]" not in install
        assert "-e " not in install
    copied = " ".join(only("COPY"))
    for source in ("requirements.lock", "setup.py", "MANIFEST.in", "seeds", "service"):
        assert source in copied


def test_dockerfile_env_is_real_settings() -> None:
    env = dockerfile_env()
    thiqa = {key: value for key, value in env.items() if key.startswith("THIQA_")}
    assert thiqa == {
        "THIQA_HOST": ALL_INTERFACES,
        "THIQA_PORT": "8000",
        "THIQA_KEYS_DIR": KEYS_DIR,
        "THIQA_DATA_DIR": "/var/lib/thiqa/data",
    }
    assert set(thiqa) <= SETTINGS_VARIABLES, set(thiqa) - SETTINGS_VARIABLES


def test_dockerfile_runs_thiqa_serve_as_non_root() -> None:
    assert [json.loads(args) for args in only("CMD")] == [["thiqa", "serve"]]
    users = only("USER")
    assert users, "the image must not run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"}
    assert group not in {"root", "0"}
    keywords = [kw for kw, _ in dockerfile_instructions()]
    assert keywords.index("USER") < keywords.index("CMD")


def test_dockerfile_keys_volume_is_owned_by_the_service_user() -> None:
    keywords = [kw for kw, _ in dockerfile_instructions()]
    assert only("VOLUME") == [f'["{KEYS_DIR}"]']
    chown = [args for args in only("RUN") if "chown" in args]
    assert len(chown) == 1
    assert "chown -R thiqa:thiqa /var/lib/thiqa" in chown[0]
    assert "mkdir -p /var/lib/thiqa/keys" in chown[0]
    # Ownership must be set before VOLUME: later build steps cannot change a volume's content.
    run_positions = [
        i
        for i, (kw, args) in enumerate(dockerfile_instructions())
        if kw == "RUN" and "chown" in args
    ]
    assert run_positions[0] < keywords.index("VOLUME")
    assert "useradd --system --uid 10001" in " ".join(only("RUN"))
    assert only("USER") == ["10001:10001"]


def test_dockerfile_exposes_and_checks_health() -> None:
    assert only("EXPOSE") == ["8000"]
    (healthcheck,) = only("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request.urlopen('http://127.0.0.1:%s/health'" in argv[2]
    assert "os.environ.get('THIQA_PORT', '8000')" in argv[2]


# --- .dockerignore ----------------------------------------------------------------------------


def _ignored(path: str) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; a match on a parent folder
    excludes everything below it."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        anywhere = pattern.startswith("**/")  # else anchored at the context root
        pattern = pattern.removeprefix("**/")
        for candidate in candidates:
            name = candidate.rsplit("/", 1)[-1] if anywhere else candidate
            if fnmatch.fnmatchcase(name, pattern):
                excluded = not negate
                break
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "keys/3f2a9c.pem",
        "keys/keyring.json",
        "keys/.keyring.json.tmp",
        "var/redis/appendonlydir/appendonly.aof.1.incr.aof",
        "service/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".hypothesis/examples/x",
        "thiqa.egg-info/PKG-INFO",
        ".env",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert _ignored(path)


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "README.md", "keys/README.md", "service/settings.py", "service/py.typed"],
)
def test_dockerignore_lets_the_package_in(path: str) -> None:
    assert not _ignored(path)


# --- secrets, Redis access and the published port (README, Deployment) -----------------------


def test_compose_requires_the_public_url(api: dict[str, Any]) -> None:
    # `:?` stops `docker compose up` when it is unset: no silent http://localhost:8000 `iss`.
    assert environment(api)["THIQA_PUBLIC_URL"].startswith("${THIQA_PUBLIC_URL:?")


def test_compose_publishes_the_api_on_this_machine_only(api: dict[str, Any]) -> None:
    assert api["ports"] == ["127.0.0.1:8000:8000"]


def test_secrets_are_files_never_environment_values(
    compose: dict[str, Any], api: dict[str, Any], redis_service: dict[str, Any]
) -> None:
    env = environment(api)
    assert "THIQA_KEY_PASSPHRASE" not in env
    assert env["THIQA_KEY_PASSPHRASE_FILE"] == "/run/secrets/key_passphrase"
    assert env["THIQA_REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
    assert env["THIQA_REDIS_URL"] == "redis://thiqa@redis:6379/0"  # user, no password
    assert set(api["secrets"]) == {"redis_password", "key_passphrase"}
    assert redis_service["secrets"] == ["redis_password"]
    assert compose["secrets"] == {
        "redis_password": {"file": "./secrets/redis_password"},
        "key_passphrase": {"file": "./secrets/key_passphrase"},
    }
    gitignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "/secrets/" in gitignored
    assert "secrets/" in DOCKERIGNORE.read_text(encoding="utf-8").split()


def _run_compose_redis(
    redis_service: dict[str, Any], tmp_path: Path, password: str
) -> subprocess.Popen[bytes]:
    """The redis service's own command, on this machine's redis-server, with the secret and
    tmpfs paths moved into ``tmp_path`` and a unix socket instead of port 6379."""
    secret = tmp_path / "redis_password"
    secret.write_text(password + "\n")
    command = redis_service["command"]
    assert command[:2] == ["sh", "-c"]
    script = (
        command[2]
        .replace("/run/secrets/redis_password", str(secret))
        .replace("/tmp/users.conf", str(tmp_path / "users.conf"))  # noqa: S108
    )
    script += f" --port 0 --unixsocket {tmp_path / 'r.sock'} --dir {tmp_path}"
    return subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL)


def test_compose_redis_needs_the_password_and_the_healthcheck_may_only_ping(
    redis_service: dict[str, Any], tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("needs redis-server and redis-cli on PATH")
    password = "s3cret-" + "x" * 20
    process = _run_compose_redis(redis_service, tmp_path, password)
    socket = tmp_path / "r.sock"
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert process.poll() is None, "redis-server did not start with the compose command"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (tmp_path / "users.conf").stat().st_mode & 0o777 == 0o600
        anonymous = redis.Redis(unix_socket_path=str(socket))
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()
        # The healthcheck's own command, against this server.
        check = redis_service["healthcheck"]["test"][1].replace(
            "redis-cli", f"redis-cli -s {socket}"
        )
        assert subprocess.run(["sh", "-c", check], check=False).returncode == 0
        health = redis.Redis(unix_socket_path=str(socket), username="healthcheck", password="-")
        with pytest.raises(redis.exceptions.NoPermissionError):
            health.get("anything")
        health.close()
        # The API's user, with the password from the same secret file, may do its work.
        api = redis.Redis(unix_socket_path=str(socket), username="thiqa", password=password)
        assert api.set("thiqa:probe", "1")
        assert api.eval("return redis.call('GET', KEYS[1])", 1, "thiqa:probe") == b"1"
        api.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
