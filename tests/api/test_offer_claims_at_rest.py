"""A credential offer's parked claims never reach Redis's disk in the clear.

The offer waits in Redis until the wallet comes for it. Its claims are sealed with AES-GCM
under a key kept in the keys folder, not in Redis, so neither the append-only file, nor a
snapshot, nor any value Redis holds carries a citizen's name, birth date or national id:
not while the offer waits, and not after the credential was issued.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.api.server import BackgroundServer, free_port
from service.core.keys import generate_signing_key
from service.settings import Settings
from service.store.embedded import EmbeddedRedis
from tests.conftest import add_client

from .test_openid4vci import (
    access_token,
    body_for,
    claim_values,
    credential_request,
    make_offer,
    new_nonce,
    proof,
)

CITIZEN: dict[str, Any] = {
    "given_name": "Zyxwvut-Unique",
    "given_name#ar": "زيكسوڤت",
    "family_name": "Qwertyuiop-Distinct",
    "family_name#ar": "كويرتيوب",
    "birthdate": "1987-06-05",
    "place_of_birth": {"locality": "Xanaduville", "locality#ar": "زانادو", "country": "MA"},
    "sex": "M",
    "national_id": "QJ918273",
    "nationality": "MA",
}
#: Long enough never to occur by chance in an id, a hash or a ciphertext.
SECRETS = [v for v in claim_values(CITIZEN) if len(v) >= 3]


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis that writes to disk as production's does: append-only, fsync always."""
    with EmbeddedRedis(tmp_path / "data", durable=True) as embedded:
        yield embedded


@pytest.fixture
def on_disk(tmp_path: Path, durable: EmbeddedRedis) -> Iterator[tuple[Settings, httpx.Client]]:
    settings = Settings(
        redis_url=durable.url,
        keys_dir=tmp_path / "keys",
        data_dir=tmp_path / "data",
        redis_prefix=f"t{secrets.token_hex(6)}",
        host="127.0.0.1",
        port=free_port(),
        status_list_size=4096,
        tx_code_length=6,
    )
    key = add_client(settings, "ministry", frozenset({"issue"}))  # type: ignore[arg-type]
    with (
        BackgroundServer(settings) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http,
    ):
        yield settings, http


def _found(blob: bytes) -> list[str]:
    return [
        v
        for v in SECRETS
        if v.encode("utf-8") in blob or json.dumps(v)[1:-1].encode("ascii") in blob
    ]


def _everything(durable: EmbeddedRedis) -> bytes:
    """Every value Redis holds, the append-only file and a fresh uncompressed snapshot."""
    client = redis.Redis.from_url(durable.url)
    try:
        blob = bytearray()
        for key in client.scan_iter(count=1000):
            blob += key + (client.dump(key) or b"")
            kind = client.type(key)
            if kind == b"hash":
                for field, value in client.hgetall(key).items():
                    blob += field + value
            elif kind == b"string":
                blob += client.get(key) or b""
        client.config_set("rdbcompression", "no")  # LZF would hide the text from a search
        client.save()
        for path in durable.redis_dir.rglob("*"):
            if path.is_file() and not path.is_socket():
                blob += path.read_bytes()
        return bytes(blob)
    finally:
        client.close()


def test_no_claim_reaches_redis_or_its_files_while_waiting_or_after_issuance(
    durable: EmbeddedRedis, on_disk: tuple[Settings, httpx.Client]
) -> None:
    settings, http = on_disk
    assert len(SECRETS) == 8
    offer = make_offer(http, CITIZEN)
    files = [p.name for p in durable.redis_dir.rglob("*") if p.is_file()]
    assert any(name.endswith(".aof") for name in files), files  # the test reads real files
    # While the offer waits for the wallet.
    assert _found(_everything(durable)) == []

    anonymous = httpx.Client(base_url=settings.issuer_url, timeout=10)
    try:
        token = access_token(anonymous, offer)
        jwt = proof(
            generate_signing_key("ES256"), nonce=new_nonce(anonymous), aud=settings.issuer_url
        )
        response = credential_request(anonymous, token, body_for(jwt))
        assert response.status_code == 200, response.text
    finally:
        anonymous.close()
    # After issuance: the append-only file still holds every write ever made.
    assert _found(_everything(durable)) == []
