"""Settings: THIQA_* variables, defaults and refusals."""

from __future__ import annotations

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
