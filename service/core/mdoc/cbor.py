"""Strict, bounded CBOR (RFC 8949) for mdocs: every byte is checked before cbor2 decodes it.

cbor2 decodes what it is given and keeps the last of two equal map keys; it accepts trailing
bytes after the item and reads declared lengths as far as the data goes. An mdoc is signed
over exact bytes and read by several parties, so two readers must never see two documents in
one byte string. :func:`decode` therefore walks the item's heads first and refuses, each with
its own code:

- data that ends inside an item (``cbor_truncated``) or goes on after it
  (``cbor_trailing_bytes``);
- indefinite lengths (``cbor_indefinite_length``): ISO/IEC 18013-5 and COSE want definite ones;
- a repeated map key (``cbor_duplicate_key``), compared by value, not by encoding;
- a declared length or count beyond the caps (``cbor_length_too_large``);
- nesting deeper than the cap (``cbor_too_deep``);
- a tag outside the allow-list, or a tag around the wrong kind of item (``cbor_wrong_tag``);
- reserved heads, unassigned simple values, invalid UTF-8 text, map keys other than integers
  and text (``cbor_malformed``).

Only then does cbor2 build the Python values, with its own duplicate-key, indefinite-length and
depth guards on as a second line. Tag 24 (embedded CBOR) stays a :class:`cbor2.CBORTag`: what
it wraps is decoded by its own call, with its own checks, when a reader needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import cbor2

from service.core.reasons import Reason, VerificationFailure

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TAGS",
    "TAG_COSE_SIGN1",
    "TAG_ENCODED_CBOR",
    "TAG_FULL_DATE",
    "TAG_TDATE",
    "CBORError",
    "CBORLimits",
    "decode",
    "decode_embedded",
    "embed",
    "encode",
]

TAG_TDATE: Final = 0
TAG_EPOCH: Final = 1
TAG_ENCODED_CBOR: Final = 24
TAG_COSE_SIGN1: Final = 18
TAG_FULL_DATE: Final = 1004

#: Tags an mdoc may carry, each with the major type of the item it must wrap.
DEFAULT_TAGS: Final = frozenset(
    {TAG_TDATE, TAG_EPOCH, TAG_ENCODED_CBOR, TAG_COSE_SIGN1, TAG_FULL_DATE}
)
_TAG_CONTENT: Final = {
    TAG_TDATE: (3,),
    TAG_EPOCH: (0, 1, 7),
    TAG_ENCODED_CBOR: (2,),
    TAG_COSE_SIGN1: (4,),
    TAG_FULL_DATE: (3,),
}

_UINT, _NINT, _BSTR, _TSTR, _ARRAY, _MAP, _TAG, _SIMPLE = range(8)


class CBORError(VerificationFailure):
    """CBOR that the strict decoder refuses; ``reason`` is one of the ``cbor_*`` codes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CBORLimits:
    max_bytes: int = 256 * 1024
    max_depth: int = 16
    max_items: int = 20_000


DEFAULT_LIMITS: Final = CBORLimits()


def encode(value: Any) -> bytes:
    """Definite lengths, shortest heads: what every mdoc party expects (cbor2's default)."""
    return cbor2.dumps(value)


def embed(value: Any) -> cbor2.CBORTag:
    """``#6.24(bstr .cbor value)``: the form the MSO and IssuerSignedItems are signed in."""
    return cbor2.CBORTag(TAG_ENCODED_CBOR, encode(value))


def decode(
    data: bytes,
    *,
    limits: CBORLimits = DEFAULT_LIMITS,
    tags: frozenset[int] = DEFAULT_TAGS,
) -> Any:
    """Exactly one well-formed item in ``data``, or :class:`CBORError`."""
    if not isinstance(data, bytes | bytearray):
        raise CBORError(Reason.CBOR_WRONG_TYPE, "not a byte string")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise CBORError(Reason.CBOR_LENGTH_TOO_LARGE, "data larger than the cap")
    walker = _Walker(data, limits, tags)
    end = walker.item(0, 0)
    if end != len(data):
        raise CBORError(Reason.CBOR_TRAILING_BYTES)
    try:
        return cbor2.loads(
            data,
            tag_hook=_thaw_tag,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=limits.max_depth + 2,
        )
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        # Well-formed heads, but a value cbor2 cannot build (a tdate that is no date...).
        raise CBORError(Reason.CBOR_MALFORMED, "undecodable value") from exc


def _thaw_tag(tag: cbor2.CBORTag, _immutable: bool = False) -> cbor2.CBORTag:
    # cbor2 freezes whatever a tag wraps (tuples, frozendicts) so that tags stay hashable;
    # a tagged COSE_Sign1 is read like an untagged one, so give it back its lists and maps.
    return cbor2.CBORTag(tag.tag, _thaw(tag.value))


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    if isinstance(value, dict | cbor2.frozendict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def decode_embedded(
    item: Any,
    *,
    limits: CBORLimits = DEFAULT_LIMITS,
    tags: frozenset[int] = DEFAULT_TAGS,
) -> tuple[Any, bytes]:
    """The value inside ``#6.24(bstr)``, and the embedded bytes it was decoded from."""
    if not isinstance(item, cbor2.CBORTag) or item.tag != TAG_ENCODED_CBOR:
        raise CBORError(Reason.CBOR_WRONG_TAG, "expected embedded CBOR (tag 24)")
    if not isinstance(item.value, bytes):
        raise CBORError(Reason.CBOR_WRONG_TAG, "tag 24 around a non-bstr")
    return decode(item.value, limits=limits, tags=tags), item.value


class _Walker:
    """One pass over the heads: positions, lengths and nesting, never building values."""

    __slots__ = ("data", "items", "limits", "tags")

    def __init__(self, data: bytes, limits: CBORLimits, tags: frozenset[int]) -> None:
        self.data = data
        self.limits = limits
        self.tags = tags
        self.items = 0

    def head(self, pos: int) -> tuple[int, int, int, int]:
        """(major type, argument, position after the head, additional info)."""
        data = self.data
        if pos >= len(data):
            raise CBORError(Reason.CBOR_TRUNCATED)
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if info < 24:
            return major, info, pos, info
        if info <= 27:
            size = 1 << (info - 24)
            if pos + size > len(data):
                raise CBORError(Reason.CBOR_TRUNCATED)
            return major, int.from_bytes(data[pos : pos + size], "big"), pos + size, info
        if info == 31:
            if major in (_BSTR, _TSTR, _ARRAY, _MAP):
                raise CBORError(Reason.CBOR_INDEFINITE_LENGTH)
            raise CBORError(Reason.CBOR_MALFORMED, "break or reserved head")
        raise CBORError(Reason.CBOR_MALFORMED, "reserved additional information")

    def count(self, n: int = 1) -> None:
        self.items += n
        if self.items > self.limits.max_items:
            raise CBORError(Reason.CBOR_LENGTH_TOO_LARGE, "too many items")

    def item(self, pos: int, depth: int) -> int:
        if depth > self.limits.max_depth:
            raise CBORError(Reason.CBOR_TOO_DEEP)
        self.count()
        major, arg, pos, info = self.head(pos)
        if major in (_UINT, _NINT):
            return pos
        if major in (_BSTR, _TSTR):
            if arg > self.limits.max_bytes:
                raise CBORError(Reason.CBOR_LENGTH_TOO_LARGE, "string longer than the cap")
            end = pos + arg
            if end > len(self.data):
                raise CBORError(Reason.CBOR_TRUNCATED)
            if major == _TSTR:
                try:
                    self.data[pos:end].decode("utf-8")
                except UnicodeDecodeError:
                    raise CBORError(Reason.CBOR_MALFORMED, "text is not UTF-8") from None
            return end
        if major == _ARRAY:
            self.check_count(arg, pos)
            for _ in range(arg):
                pos = self.item(pos, depth + 1)
            return pos
        if major == _MAP:
            self.check_count(2 * arg, pos)
            seen: set[tuple[int, Any]] = set()
            for _ in range(arg):
                key = self.key(pos)
                if key in seen:
                    raise CBORError(Reason.CBOR_DUPLICATE_KEY)
                seen.add(key)
                pos = self.item(pos, depth + 1)
                pos = self.item(pos, depth + 1)
            return pos
        if major == _TAG:
            if arg not in self.tags:
                raise CBORError(Reason.CBOR_WRONG_TAG, f"tag {arg} not allowed")
            inner_major = self.head(pos)[0]
            if inner_major not in _TAG_CONTENT.get(arg, range(8)):
                raise CBORError(Reason.CBOR_WRONG_TAG, f"tag {arg} around the wrong type")
            return self.item(pos, depth + 1)
        # Major type 7: false, true, null and floats only.
        if info in (20, 21, 22, 25, 26, 27):
            return pos
        raise CBORError(Reason.CBOR_MALFORMED, "unassigned simple value")

    def check_count(self, declared: int, pos: int) -> None:
        # Every item takes at least one byte: a count beyond what is left cannot be honest.
        if declared > self.limits.max_items:
            raise CBORError(Reason.CBOR_LENGTH_TOO_LARGE, "count larger than the cap")
        if declared > len(self.data) - pos:
            raise CBORError(Reason.CBOR_TRUNCATED)

    def key(self, pos: int) -> tuple[int, Any]:
        """A map key by value: integers and text only (all that mdocs, COSE and CWT use)."""
        major, arg, start, _ = self.head(pos)
        if major == _UINT:
            return (0, arg)
        if major == _NINT:
            return (0, -1 - arg)
        if major == _TSTR:
            end = start + arg
            if arg > self.limits.max_bytes or end > len(self.data):
                raise CBORError(Reason.CBOR_TRUNCATED)
            return (1, self.data[start:end])
        raise CBORError(Reason.CBOR_MALFORMED, "map key is neither integer nor text")
