"""ClientStore against a real redis-server: API keys, their hashes, names and revocation."""

from __future__ import annotations

import hashlib
import re
from typing import cast

import pytest
import redis

from service.errors import (
    ClientExists,
    ClientNotFound,
    InvalidRequest,
    RateLimited,
    StoreUnavailable,
)
from service.settings import Settings
from service.store.clients import Client, ClientStore, Scope
from service.store.connection import KeySpace

from .helpers import dump_under, keys_under, run_clients, url_of

KEY_SHAPE = re.compile(r"^thq_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def key_parts(key: str) -> tuple[str, str]:
    """An API key's id and secret; the key must have the documented shape."""
    match = KEY_SHAPE.fullmatch(key)
    assert match is not None, key
    return match.group(1), match.group(2)


ALL = frozenset(Scope)


def _add(settings: Settings, name: str, scopes: frozenset[Scope] = ALL) -> str:
    return run_clients(url_of(settings), settings.redis_prefix, lambda s: s.add(name, scopes))


def _authenticate(settings: Settings, api_key: str) -> Client | None:
    return run_clients(url_of(settings), settings.redis_prefix, lambda s: s.authenticate(api_key))


def _list(settings: Settings) -> list[Client]:
    return run_clients(url_of(settings), settings.redis_prefix, lambda s: s.list())


def _revoke(settings: Settings, name: str) -> None:
    run_clients(url_of(settings), settings.redis_prefix, lambda s: s.revoke(name))


def _with_char_changed(text: str, position: int) -> str:
    replacement = "B" if text[position] != "B" else "C"
    return text[:position] + replacement + text[position + 1 :]


def test_added_key_has_the_documented_shape_and_authenticates_with_its_scopes(
    settings: Settings,
) -> None:
    key = _add(settings, "wallet-app", frozenset({Scope.VERIFY, Scope.ISSUE}))
    assert KEY_SHAPE.fullmatch(key)
    client = _authenticate(settings, key)
    assert client is not None
    assert client.name == "wallet-app"
    assert client.scopes == frozenset({Scope.VERIFY, Scope.ISSUE})

    other = _add(settings, "revoker", frozenset({Scope.REVOKE}))
    assert other != key
    revoker = _authenticate(settings, other)
    assert revoker is not None
    assert (revoker.name, revoker.scopes) == ("revoker", frozenset({Scope.REVOKE}))


def test_redis_holds_only_a_sha256_of_the_secret(
    settings: Settings, redis_client: redis.Redis
) -> None:
    key = _add(settings, "wallet-app")
    match = KEY_SHAPE.fullmatch(key)
    assert match is not None
    key_id, secret = match.groups()

    dump = dump_under(redis_client, settings.redis_prefix)
    assert dump
    everything = repr(dump).encode() + b"".join(dump)
    for value in dump.values():
        if isinstance(value, dict):
            everything += b"".join(value) + b"".join(value.values())
        elif isinstance(value, set):
            everything += b"".join(value)
        else:
            everything += cast(bytes, value)
    assert secret.encode() not in everything
    assert key.encode() not in everything
    # Not even half of it: nothing that narrows a guess.
    assert secret[:22].encode() not in everything
    assert secret[21:].encode() not in everything

    stored = redis_client.hgetall(KeySpace(settings.redis_prefix).api_key(key_id))
    assert stored[b"hash"] == hashlib.sha256(secret.encode()).hexdigest().encode()
    assert stored[b"name"] == b"wallet-app"


def test_wrong_unknown_or_malformed_keys_do_not_authenticate(settings: Settings) -> None:
    key = _add(settings, "wallet-app")
    other = _add(settings, "other-app")
    key_id, secret = key_parts(key)
    other_id, other_secret = key_parts(other)
    prefix_len = len(f"thq_{key_id}_")

    rejected = [
        _with_char_changed(key, prefix_len),  # first character of the secret
        _with_char_changed(key, prefix_len + 20),
        _with_char_changed(key, len(key) - 1),  # last character of the secret
        _with_char_changed(key, 4),  # key id: an unknown one
        f"thq_{'0' * 16}_{secret}",
        f"thq_{key_id}_{other_secret}",  # one client's id, another's secret
        f"thq_{other_id}_{secret}",
        "",
        "thq_",
        "thq__",
        key[:-1],
        key + "A",
        key + "\n",
        " " + key,
        key.upper(),
        "Bearer " + key,
        key.replace("thq_", "thx_", 1),
        f"thq_{key_id}:{secret}",
        f"thq_{key_id}_{secret[:-1]}=",
        f"thq_{key_id.upper()}_{secret}",
        f"thq_{key_id}_{secret}".replace("_", "-"),
    ]
    for candidate in rejected:
        assert _authenticate(settings, candidate) is None, candidate
    assert _authenticate(settings, key) is not None
    assert _authenticate(settings, other) is not None


def test_only_requests_holding_the_whole_key_count_against_its_rate_limit(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """The key id is the readable half of a key; knowing it must not let anyone spend the
    client's quota, and keys that do not exist leave nothing in Redis."""
    key = _add(settings, "wallet-app")
    key_id, secret = key_parts(key)
    before = keys_under(redis_client, settings.redis_prefix)

    def authenticate(api_key: str) -> Client | None:
        return run_clients(
            url_of(settings),
            settings.redis_prefix,
            lambda s: s.authenticate(api_key, per_minute=2, now=120.0),
        )

    for _ in range(5):
        assert authenticate(f"thq_{key_id}_{_with_char_changed(secret, 0)}") is None
        assert authenticate(f"thq_{'0' * 16}_{secret}") is None
    assert keys_under(redis_client, settings.redis_prefix) == before
    assert authenticate(key) is not None
    assert authenticate(key) is not None
    with pytest.raises(RateLimited) as limited:
        authenticate(key)
    assert limited.value.extra["retry_after"] == 60


def test_duplicate_name_is_refused_and_keeps_the_first_key(
    settings: Settings, redis_client: redis.Redis
) -> None:
    key = _add(settings, "wallet-app", frozenset({Scope.VERIFY}))
    before = dump_under(redis_client, settings.redis_prefix)
    with pytest.raises(ClientExists):
        _add(settings, "wallet-app", ALL)
    assert dump_under(redis_client, settings.redis_prefix) == before
    client = _authenticate(settings, key)
    assert client is not None
    assert client.scopes == frozenset({Scope.VERIFY})


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Wallet",
        "-leading-dash",
        ".leading-dot",
        "_leading-underscore",
        "has space",
        "slash/name",
        "colon:name",
        "brace{name}",
        "star*",
        "a" * 65,
        "trailing-newline\n",
        "tab\tname",
        "تطبيق",
        "wallet-app ",
    ],
)
def test_invalid_client_names_are_refused_and_write_nothing(
    settings: Settings, redis_client: redis.Redis, name: str
) -> None:
    with pytest.raises(InvalidRequest):
        _add(settings, name)
    assert keys_under(redis_client, settings.redis_prefix) == set()


@pytest.mark.parametrize("name", ["a", "0", "a" * 64, "gov.app_v2-beta", "9lives"])
def test_valid_client_names_are_accepted(settings: Settings, name: str) -> None:
    key = _add(settings, name)
    client = _authenticate(settings, key)
    assert client is not None
    assert client.name == name


def test_revoked_key_fails_at_once_and_the_client_leaves_the_list(
    settings: Settings, redis_client: redis.Redis
) -> None:
    key = _add(settings, "wallet-app")
    keep = _add(settings, "other-app")
    assert _authenticate(settings, key) is not None

    _revoke(settings, "wallet-app")
    assert _authenticate(settings, key) is None
    assert [c.name for c in _list(settings)] == ["other-app"]
    assert _authenticate(settings, keep) is not None
    key_id = key_parts(key)[0]
    assert not any(key_id.encode() in k for k in keys_under(redis_client, settings.redis_prefix))

    with pytest.raises(ClientNotFound):
        _revoke(settings, "wallet-app")  # already gone

    # The name is free again, with a new key; the old key stays dead.
    new = _add(settings, "wallet-app")
    assert new != key
    assert _authenticate(settings, new) is not None
    assert _authenticate(settings, key) is None


@pytest.mark.parametrize("name", ["never-added", "", "Bad Name", "x" * 200])
def test_revoking_an_unknown_client_is_client_not_found(
    settings: Settings, redis_client: redis.Redis, name: str
) -> None:
    _add(settings, "wallet-app")
    before = dump_under(redis_client, settings.redis_prefix)
    with pytest.raises(ClientNotFound):
        _revoke(settings, name)
    assert dump_under(redis_client, settings.redis_prefix) == before


def test_list_is_sorted_by_name_with_scopes_and_never_a_key(settings: Settings) -> None:
    assert _list(settings) == []
    keys = {
        "zeta": _add(settings, "zeta", frozenset({Scope.VERIFY})),
        "alpha": _add(settings, "alpha", ALL),
        "mid.app": _add(settings, "mid.app", frozenset({Scope.ISSUE, Scope.REVOKE})),
    }
    clients = _list(settings)
    assert [c.name for c in clients] == ["alpha", "mid.app", "zeta"]
    assert [c.scopes for c in clients] == [
        ALL,
        frozenset({Scope.ISSUE, Scope.REVOKE}),
        frozenset({Scope.VERIFY}),
    ]
    assert all(c.created_at > 1_600_000_000 for c in clients)
    shown = repr(clients)
    for key in keys.values():
        key_id, secret = key_parts(key)
        assert secret not in shown
        assert key_id not in shown


@pytest.mark.parametrize("url", ["unix:///nonexistent/thiqa.sock", "redis://127.0.0.1:1/0"])
def test_client_operations_raise_store_unavailable_when_redis_is_unreachable(
    url: str,
) -> None:
    key = "thq_0123456789abcdef_" + "A" * 43

    async def go(store: ClientStore) -> None:
        with pytest.raises(StoreUnavailable):
            await store.authenticate(key)  # fails closed: an error, never a guess
        with pytest.raises(StoreUnavailable):
            await store.add("wallet-app", ALL)
        with pytest.raises(StoreUnavailable):
            await store.list()
        with pytest.raises(StoreUnavailable):
            await store.revoke("wallet-app")

    run_clients(url, "down", go)
