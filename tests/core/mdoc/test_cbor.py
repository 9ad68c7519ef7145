"""The strict CBOR decoder: every refusal has its own code, and nothing odd gets through."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from service.core.mdoc.cbor import CBORError, CBORLimits, decode, decode_embedded, embed, encode
from service.core.reasons import Reason

GOOD = encode({"version": "1.0", "documents": [{"docType": "x", "n": [1, -2, b"\x00", 1.5]}]})


def _refused(data: bytes, **kwargs: Any) -> Reason:
    with pytest.raises(CBORError) as caught:
        decode(data, **kwargs)
    return caught.value.reason


def test_a_well_formed_item_decodes_to_its_value() -> None:
    assert decode(GOOD) == cbor2.loads(GOOD)


@pytest.mark.parametrize("cut", [1, 5, len(GOOD) // 2, len(GOOD) - 1])
def test_truncated_data_is_cbor_truncated(cut: int) -> None:
    assert _refused(GOOD[:cut]) is Reason.CBOR_TRUNCATED


def test_empty_data_is_cbor_truncated() -> None:
    assert _refused(b"") is Reason.CBOR_TRUNCATED


def test_bytes_after_the_item_are_cbor_trailing_bytes() -> None:
    assert _refused(GOOD + b"\x00") is Reason.CBOR_TRAILING_BYTES


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("9f01ff"),  # indefinite array
        bytes.fromhex("bf6161 01ff"),  # indefinite map
        bytes.fromhex("5f4101ff"),  # indefinite byte string
        bytes.fromhex("7f6161ff"),  # indefinite text string
    ],
)
def test_indefinite_lengths_are_refused(data: bytes) -> None:
    assert _refused(data) is Reason.CBOR_INDEFINITE_LENGTH


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("a2 01 00 01 01"),  # {1: 0, 1: 1}
        bytes.fromhex("a2 6161 00 6161 01"),  # {"a": 0, "a": 1}
        bytes.fromhex("a2 01 00 1801 01"),  # 1 and 1 in a longer head: equal values
        bytes.fromhex("81 a2 20 00 20 01"),  # nested, negative keys
    ],
)
def test_a_repeated_map_key_is_refused(data: bytes) -> None:
    assert _refused(data) is Reason.CBOR_DUPLICATE_KEY


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("5b7fffffffffffffff00"),  # byte string of 2^63 bytes
        bytes.fromhex("7a7fffffff61"),  # text of 2 GiB
        bytes.fromhex("9b0fffffffffffffff"),  # array of 2^60 items
        bytes.fromhex("bb0fffffffffffffff"),  # map of 2^60 pairs
    ],
)
def test_huge_declared_lengths_are_refused_before_reading(data: bytes) -> None:
    assert _refused(data) is Reason.CBOR_LENGTH_TOO_LARGE


def test_more_items_than_the_cap_are_refused() -> None:
    data = encode(list(range(100)))
    assert _refused(data, limits=CBORLimits(max_items=50)) is Reason.CBOR_LENGTH_TOO_LARGE


def test_data_larger_than_the_cap_is_refused() -> None:
    assert _refused(encode(b"x" * 100), limits=CBORLimits(max_bytes=64)) is (
        Reason.CBOR_LENGTH_TOO_LARGE
    )


def test_deep_nesting_is_refused() -> None:
    assert _refused(b"\x81" * 40 + b"\x00") is Reason.CBOR_TOO_DEEP
    assert _refused(b"\x81" * 100_000 + b"\x00") is Reason.CBOR_TOO_DEEP


@pytest.mark.parametrize(
    "data",
    [
        encode(cbor2.CBORTag(42, b"")),  # a tag nobody asked for
        encode(cbor2.CBORTag(24, "text")),  # embedded CBOR around text
        encode(cbor2.CBORTag(18, {})),  # COSE_Sign1 around a map
        encode(cbor2.CBORTag(1004, 20240101)),  # full-date around an integer
    ],
)
def test_wrong_tags_are_refused(data: bytes) -> None:
    assert _refused(data) is Reason.CBOR_WRONG_TAG


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("1c"),  # reserved additional information
        bytes.fromhex("ff"),  # a break outside an indefinite item
        bytes.fromhex("f7"),  # undefined
        bytes.fromhex("f820"),  # a simple value with a one-byte head
        bytes.fromhex("62c328"),  # text that is not UTF-8
        bytes.fromhex("a1 41 00 00"),  # a byte string as a map key
        encode(cbor2.CBORTag(0, "not a date")),
    ],
)
def test_malformed_items_are_refused(data: bytes) -> None:
    assert _refused(data) is Reason.CBOR_MALFORMED


def test_text_instead_of_bytes_is_a_wrong_type() -> None:
    assert _refused("GOOD") is Reason.CBOR_WRONG_TYPE  # type: ignore[arg-type]


def test_embedded_cbor_is_decoded_strictly_too() -> None:
    assert decode_embedded(embed({"a": 1})) == ({"a": 1}, encode({"a": 1}))
    with pytest.raises(CBORError) as caught:
        decode_embedded(cbor2.CBORTag(24, bytes.fromhex("a2 01 00 01 01")))
    assert caught.value.reason is Reason.CBOR_DUPLICATE_KEY
    with pytest.raises(CBORError) as caught:
        decode_embedded(b"raw")
    assert caught.value.reason is Reason.CBOR_WRONG_TAG
