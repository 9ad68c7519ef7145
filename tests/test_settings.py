"""Settings: THIQA_* variables, defaults and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"THIQA_{name.upper()}", raising=False)
    settings = Settings()
    assert settings.redis_url is None
    assert settings.issuer_url == "http://127.0.0.1:8000"
    assert settings.status_list_uri("abc") == "http://127.0.0.1:8000/status-lists/abc"
    assert settings.max_body_bytes == 64 * 1024


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THIQA_PUBLIC_URL", "https://id.example.ma/")
    monkeypatch.setenv("THIQA_REDIS_URL", "redis://secret@redis:6379/0")
    settings = Settings()
    assert settings.issuer_url == "https://id.example.ma"
    assert settings.national_id_vct == "https://id.example.ma/types/national-id"
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("public_url", "ftp://x"),
        ("public_url", "https://x/?q=1"),
        ("port", 70000),
        ("status_list_size", 4097),
        ("redis_prefix", "Bad Prefix"),
        ("signing_alg", "HS256"),
        ("clock_skew_seconds", -1),
    ],
)
def test_invalid_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{name: value})


def test_ipv6_host_gives_a_bracketed_issuer() -> None:
    assert Settings(host="::1", port=9000).issuer_url == "http://[::1]:9000"


def test_empty_values_mean_unset() -> None:
    settings = Settings(key_passphrase="", public_url="", redis_url="")
    assert settings.key_passphrase is None
    assert settings.public_url is None
    assert settings.redis_url is None


def test_misspelled_variables_are_reported() -> None:
    environ = {"THIQA_REDIS_URLL": "x", "THIQA_PORT": "1", "THIQA_TEST_REDIS_URL": "y", "HOME": "/"}
    assert Settings.unknown_variables(environ) == ["THIQA_REDIS_URLL"]


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"THIQA_{name.upper()}", raising=False)
        monkeypatch.delenv(f"THIQA_{name.upper()}_FILE", raising=False)


def test_a_secret_comes_from_its_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clean(monkeypatch)
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery\n")  # as `echo ... > file` writes it
    monkeypatch.setenv("THIQA_KEY_PASSPHRASE_FILE", str(passphrase))
    settings = Settings()
    assert settings.key_passphrase is not None
    assert settings.key_passphrase.get_secret_value() == "correct horse battery"
    assert Settings.unknown_variables({"THIQA_KEY_PASSPHRASE_FILE": "x"}) == []
    assert Settings.unknown_variables({"THIQA_PORT_FILE": "x"}) == ["THIQA_PORT_FILE"]


def test_a_redis_password_file_joins_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean(monkeypatch)
    password = tmp_path / "redis_password"
    password.write_text("p@ss/word:1\n")
    monkeypatch.setenv("THIQA_REDIS_PASSWORD_FILE", str(password))
    monkeypatch.setenv("THIQA_REDIS_URL", "redis://thiqa@redis:6379/0")
    settings = Settings()
    assert settings.redis_url is not None
    url = settings.redis_url.get_secret_value()
    assert url == "redis://thiqa:p%40ss%2Fword%3A1@redis:6379/0"
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"THIQA_KEY_PASSPHRASE": "a", "THIQA_KEY_PASSPHRASE_FILE": "{file}"},
            "THIQA_KEY_PASSPHRASE_FILE and THIQA_KEY_PASSPHRASE are both set: keep one",
        ),
        (
            {"THIQA_KEY_PASSPHRASE_FILE": "{missing}"},
            "THIQA_KEY_PASSPHRASE_FILE: the file cannot be read",
        ),
        (
            {"THIQA_KEY_PASSPHRASE_FILE": "{large}"},
            "THIQA_KEY_PASSPHRASE_FILE: the file is too large",
        ),
        ({"THIQA_REDIS_PASSWORD_FILE": "{file}"}, "THIQA_REDIS_PASSWORD needs THIQA_REDIS_URL"),
        (
            {"THIQA_REDIS_PASSWORD_FILE": "{file}", "THIQA_REDIS_URL": "redis://u:pw@redis:6379"},
            "THIQA_REDIS_URL carries a password",
        ),
    ],
)
def test_secret_files_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    _clean(monkeypatch)
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "large").write_bytes(b"x" * 5000)
    paths = {
        "file": tmp_path / "secret",
        "missing": tmp_path / "missing",
        "large": tmp_path / "large",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(**paths))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert message in str(refused.value)
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("host", "reachable"),
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        ("127.0.0.2", False),
        ("0.0.0.0", True),  # noqa: S104
        ("::", True),
        ("10.0.0.5", True),
        ("api.internal", True),
    ],
)
def test_which_listeners_other_machines_reach(host: str, reachable: bool) -> None:
    assert Settings(host=host).listens_beyond_this_machine is reachable
