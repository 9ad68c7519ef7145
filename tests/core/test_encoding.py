"""Strict base64url (RFC 7515 §2) and strict JSON (RFC 8259): one spelling, one reading."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.encoding import (
    MAX_JSON_DEPTH,
    EncodingError,
    b64url_decode,
    b64url_encode,
    json_dumps,
    json_loads,
)

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# --- base64url ---------------------------------------------------------------------------


def test_encodes_without_padding_in_url_safe_alphabet() -> None:
    assert b64url_encode(b"a") == "YQ"
    assert b64url_encode(b"ab") == "YWI"
    assert b64url_encode(b"abc") == "YWJj"
    assert b64url_encode(b"\xfb\xff\xbf") == "-_-_"
    assert b64url_encode(b"") == ""


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=80))
def test_decode_inverts_encode(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded.encode("ascii")) == data


def test_decodes_empty_string_to_no_bytes() -> None:
    assert b64url_decode("") == b""


@pytest.mark.parametrize("text", ["YQ==", "YQ=", "YWI=", "YWJj====", "="])
def test_rejects_padding(text: str) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("text", ["+/+/", "-_+/", "YW/j", "YW+j"])
def test_rejects_standard_alphabet(text: str) -> None:
    # The same bytes in the URL-safe alphabet decode; the standard spelling must not.
    with pytest.raises(EncodingError):
        b64url_decode(text)
    assert b64url_decode(text.replace("+", "-").replace("/", "_"))


@pytest.mark.parametrize("text", ["YQ\n", " YQ", "Y Q", "YQ\t", "YQ.", "Y\x00Q"])
def test_rejects_whitespace_and_other_symbols(text: str) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("text", ["A", "AAAAA", "YWJjY", "YWJjYWJjY"])
def test_rejects_length_one_more_than_a_multiple_of_four(text: str) -> None:
    assert len(text) % 4 == 1
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("text", ["YQé", "ＹＱ", "YQ\u0660", "\u200bYQ"])
def test_rejects_non_ascii_text(text: str) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(text)


def test_rejects_non_ascii_bytes() -> None:
    with pytest.raises(EncodingError):
        b64url_decode(b"YQ\xc3\xa9")


def test_two_trailing_characters_accept_exactly_the_four_canonical_endings() -> None:
    # Two characters carry 12 bits for one byte: the last 4 bits must be zero.
    accepted = []
    for char in ALPHABET:
        try:
            b64url_decode("Y" + char)
        except EncodingError:
            continue
        accepted.append(char)
    assert accepted == ["A", "Q", "g", "w"]


def test_three_trailing_characters_accept_exactly_the_sixteen_canonical_endings() -> None:
    # Three characters carry 18 bits for two bytes: the last 2 bits must be zero.
    accepted = []
    for char in ALPHABET:
        try:
            b64url_decode("YW" + char)
        except EncodingError:
            continue
        accepted.append(char)
    assert accepted == [c for i, c in enumerate(ALPHABET) if i % 4 == 0]
    assert len(accepted) == 16


@pytest.mark.parametrize("text", ["YR", "YX", "YWJ", "YWL", "AB", "AAB"])
def test_rejects_non_canonical_trailing_bits(text: str) -> None:
    # A lenient decoder reads "YR" as b"a", the same as "YQ": a second spelling.
    assert base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    with pytest.raises(EncodingError):
        b64url_decode(text)


def test_encoding_error_is_a_value_error() -> None:
    assert issubclass(EncodingError, ValueError)


# --- JSON --------------------------------------------------------------------------------


def test_parses_plain_json() -> None:
    assert json_loads('{"a":[1,2.5,"x",true,false,null],"b":{}}') == {
        "a": [1, 2.5, "x", True, False, None],
        "b": {},
    }
    assert json_loads(b'{"name":"\xd8\xa3\xd9\x85\xd9\x8a\xd9\x86\xd8\xa9"}') == {"name": "أمينة"}


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":1}',
        '{"a":1,"a":2}',
        '{"x":{"b":1,"b":2}}',
        '[{"a":1},{"c":1,"c":1}]',
        '{"a":1,"\\u0061":2}',  # escaped spelling of the same name
    ],
)
def test_rejects_duplicate_member_names(text: str) -> None:
    with pytest.raises(EncodingError, match="duplicate"):
        json_loads(text)


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", '{"exp":NaN}', "[1,Infinity]", '{"a":-Infinity}']
)
def test_rejects_nan_and_infinity(text: str) -> None:
    with pytest.raises(EncodingError):
        json_loads(text)


@pytest.mark.parametrize("text", ["1e400", "-1e400", '{"exp":1e999}', "[2E+308]"])
def test_rejects_numbers_that_overflow_to_infinity(text: str) -> None:
    # Python reads 1e400 as float("inf"): Infinity by another spelling.
    with pytest.raises(EncodingError):
        json_loads(text)


def test_accepts_largest_finite_double() -> None:
    assert json_loads("1.7976931348623157e308") == 1.7976931348623157e308


def test_rejects_integer_too_long_to_convert_without_raising_something_else() -> None:
    # CPython refuses int() of more than 4300 digits with a plain ValueError; it must come
    # out as EncodingError, or a caller that catches EncodingError crashes on it.
    with pytest.raises(EncodingError):
        json_loads("1" * 5000)
    with pytest.raises(EncodingError):
        json_loads('{"a":' + "9" * 10_000 + "}")


def test_depth_limit_allows_exactly_max_depth() -> None:
    depth = MAX_JSON_DEPTH
    arrays: Any = []
    objects: Any = 1
    for _ in range(depth - 1):
        arrays = [arrays]
    for _ in range(depth):
        objects = {"a": objects}
    assert json_loads("[" * depth + "]" * depth) == arrays
    assert json_loads('{"a":' * depth + "1" + "}" * depth) == objects


def test_depth_limit_rejects_one_level_more() -> None:
    depth = MAX_JSON_DEPTH + 1
    with pytest.raises(EncodingError, match="deep"):
        json_loads("[" * depth + "]" * depth)
    with pytest.raises(EncodingError, match="deep"):
        json_loads('{"a":' * depth + "1" + "}" * depth)
    with pytest.raises(EncodingError, match="deep"):
        json_loads('{"a":' * (depth - 1) + "[]" + "}" * (depth - 1))


def test_depth_limit_is_configurable() -> None:
    assert json_loads("[[1]]", max_depth=2) == [[1]]
    with pytest.raises(EncodingError):
        json_loads("[[[1]]]", max_depth=2)
    assert json_loads("1", max_depth=0) == 1
    with pytest.raises(EncodingError):
        json_loads("[]", max_depth=0)


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000])
def test_rejects_deep_nesting_without_crashing(text: str) -> None:
    with pytest.raises(EncodingError):
        json_loads(text)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe",
        b'{"a":"\xc3"}',  # truncated UTF-8 sequence
        b'{"a":"\xed\xa0\x80"}',  # UTF-8-encoded surrogate
        b'{"a":"\xc0\xaf"}',  # overlong encoding
    ],
)
def test_rejects_invalid_utf8(data: bytes) -> None:
    with pytest.raises(EncodingError):
        json_loads(data)


@pytest.mark.parametrize(
    "data",
    [
        '{"a":1}'.encode("utf-16"),
        '{"a":1}'.encode("utf-16-le"),
        '{"a":1}'.encode("utf-16-be"),
        '{"a":1}'.encode("utf-32"),
        b'\xef\xbb\xbf{"a":1}',  # UTF-8 byte order mark
    ],
)
def test_rejects_json_bytes_not_in_utf8(data: bytes) -> None:
    # RFC 8259 §8.1: JSON between systems is UTF-8 without a BOM; RFC 7515 signs UTF-8.
    # Python's json.loads(bytes) would guess UTF-16/32 and strip a BOM: another reading.
    with pytest.raises(EncodingError):
        json_loads(data)


@pytest.mark.parametrize("text", ["", "{", '{"a":1}x', "{'a':1}", '{"a":01}', "[1,]", '{"a" 1}'])
def test_rejects_text_that_is_not_json(text: str) -> None:
    with pytest.raises(EncodingError):
        json_loads(text)


def test_dumps_compact_utf8_without_escaping_arabic() -> None:
    text = json_dumps({"name": "أمينة", "n": [1, 2]})
    assert text == '{"name":"أمينة","n":[1,2]}'
    assert json_loads(text) == {"name": "أمينة", "n": [1, 2]}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_dumps_refuses_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        json_dumps({"x": value})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(st.characters(exclude_categories=["Cs"])),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.text(st.characters(exclude_categories=["Cs"]), max_size=5), children, max_size=4
            )
        ),
        max_leaves=20,
    )
)
def test_loads_inverts_dumps(value: object) -> None:
    assert json_loads(json_dumps(value).encode("utf-8"), max_depth=64) == value


def test_loads_agrees_with_stdlib_on_ordinary_documents() -> None:
    document = {"a": [1, {"b": "c"}], "d": -0.5, "e": "/\\"}
    text = json.dumps(document)
    assert json_loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ['"\\ud800"', '{"\\udc00": 1}', '["ok", "\\udfff"]'])
def test_lone_surrogates_are_rejected(text: str) -> None:
    with pytest.raises(EncodingError):
        json_loads(text)


def test_surrogate_pairs_are_text() -> None:
    assert json_loads('"\\ud83d\\ude00"') == "\U0001f600"
