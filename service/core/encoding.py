"""Strict base64url and JSON, as every token Thiqa reads must be parsed.

Lenient decoders are how tokens get two readings: padding or the standard alphabet accepted
by one party and not another, a duplicated JSON member read as its first value here and its
last value there. Thiqa reads exactly one form and refuses the rest:

* base64url without padding, URL-safe alphabet only, unused trailing bits zero (RFC 7515 §2);
* JSON (RFC 8259) with no duplicate member names, no NaN or Infinity, bounded nesting depth.

Failures raise :class:`EncodingError`; callers translate it into their own error code.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "EncodingError",
    "b64url_decode",
    "b64url_encode",
    "json_dumps",
    "json_loads",
]

MAX_JSON_DEPTH = 16

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


class EncodingError(ValueError):
    """The input is not in the one encoding Thiqa accepts."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    try:
        raw = text.encode("ascii") if isinstance(text, str) else text
    except UnicodeEncodeError as exc:
        raise EncodingError("not base64url") from exc
    if raw.translate(None, _ALPHABET):  # anything left is outside the alphabet
        raise EncodingError("not base64url")
    remainder = len(raw) % 4
    if remainder == 1:
        raise EncodingError("not base64url")
    # A canonical encoding leaves the bits after the last whole byte at zero; anything else
    # is a second spelling of the same bytes.
    if remainder == 2 and _B64_VALUE[raw[-1]] & 0x0F:
        raise EncodingError("not canonical base64url")
    if remainder == 3 and _B64_VALUE[raw[-1]] & 0x03:
        raise EncodingError("not canonical base64url")
    try:
        # The alphabet is checked above: map it to the standard one and decode in C, without
        # the layers of base64.urlsafe_b64decode (this runs ~20 times per presentation).
        return binascii.a2b_base64(raw.translate(_URLSAFE_TO_STANDARD) + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - alphabet checked above
        raise EncodingError("not base64url") from exc


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise EncodingError("duplicate JSON member name")
    return result


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"{name} is not JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_tree(value: Any, limit: int, *, surrogates: bool = True) -> None:
    """Bounded depth, and (with ``surrogates``) no lone surrogates (``"\\ud800"`` parses, but
    is not text and cannot be written back out as UTF-8)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if surrogates and _SURROGATE.search(item):
                raise EncodingError("lone surrogate in a JSON string")
            continue
        if isinstance(item, dict):
            if surrogates and any(_SURROGATE.search(key) for key in item):
                raise EncodingError("lone surrogate in a JSON member name")
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise EncodingError("JSON nested too deeply")
        stack.extend((child, depth + 1) for child in children)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 reads as inf: Infinity by another spelling
        raise EncodingError("number out of range")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
)
#: A lone surrogate can only arrive as a \u escape (strict UTF-8 refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def json_loads(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    try:
        # UTF-8 only (RFC 8259 §8.1): json.loads(bytes) would also take UTF-16/32, a BOM and
        # encoded surrogates.
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        value = _DECODER.decode(text)
    except RecursionError as exc:
        raise EncodingError("JSON nested too deeply") from exc
    except EncodingError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        # ValueError beyond JSONDecodeError: int() of more than 4300 digits.
        raise EncodingError("not JSON") from exc
    # The tree walk is only needed when the text could hold what it looks for: most tokens
    # have fewer brackets than the depth limit and no surrogate escape, and skip it. A body
    # of many objects (a batch) is walked for its depth only, unless it could hold a lone
    # surrogate: as a \u escape, or as itself in text that was never UTF-8.
    deep = text.count("{") + text.count("[") > max_depth
    surrogates = _SURROGATE_ESCAPE.search(text) is not None or (
        data is text and _SURROGATE.search(text) is not None
    )
    if deep or surrogates:
        _check_tree(value, max_depth, surrogates=surrogates)
    return value


def json_dumps(value: Any) -> str:
    """Compact JSON that keeps Arabic as UTF-8: digests are over the exact text, and
    escaping every letter would triple the size of a name for nothing."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
