"""Token Status List codec (draft-ietf-oauth-status-list).

A status list is a byte array of ``bits``-wide entries; entry ``i`` sits in byte
``i * bits // 8``, starting at bit ``(i * bits) % 8`` counted from the least significant bit.
Published lists are ``base64url(zlib(bytes))``.

Redis numbers bits the other way (bit 0 is the most significant bit of byte 0), so Thiqa keeps
the list in Redis in the published layout and addresses an entry with :func:`redis_offset`:
the list that is served is then the very bytes the verifier reads, with no conversion between
them to get wrong.
"""

from __future__ import annotations

import zlib
from enum import IntEnum
from typing import Final

from service.core.encoding import EncodingError, b64url_decode, b64url_encode

__all__ = [
    "ALLOWED_BITS",
    "StatusListError",
    "StatusValue",
    "decode_list",
    "encode_list",
    "get_status",
    "redis_offset",
    "set_status",
]

ALLOWED_BITS: Final = frozenset({1, 2, 4, 8})
#: Refuse to inflate more than this: a tiny zlib stream can expand to gigabytes.
MAX_DECODED_BYTES: Final = 16 * 1024 * 1024


class StatusValue(IntEnum):
    VALID = 0
    INVALID = 1  # revoked: final
    SUSPENDED = 2
    APPLICATION_SPECIFIC = 3


class StatusListError(ValueError):
    """A status list that cannot be decoded, or an index outside it."""


def _check_bits(bits: int) -> None:
    if bits not in ALLOWED_BITS:
        raise StatusListError("bits must be 1, 2, 4 or 8")


def encode_list(data: bytes) -> str:
    return b64url_encode(zlib.compress(data, level=9))


def decode_list(lst: str, *, max_bytes: int = MAX_DECODED_BYTES) -> bytes:
    try:
        compressed = b64url_decode(lst)
    except EncodingError as exc:
        raise StatusListError("lst is not base64url") from exc
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise StatusListError("lst is not zlib data") from exc
    if len(data) > max_bytes:
        raise StatusListError("status list too large")
    if not inflater.eof:
        raise StatusListError("lst is truncated")
    if inflater.unused_data:
        raise StatusListError("data after the zlib stream")
    return data


def get_status(data: bytes | bytearray, index: int, bits: int) -> int:
    _check_bits(bits)
    if index < 0 or (index + 1) * bits > len(data) * 8:
        raise StatusListError("index out of range")
    position = index * bits
    mask = (1 << bits) - 1
    return (data[position // 8] >> (position % 8)) & mask


def set_status(data: bytearray, index: int, bits: int, value: int) -> None:
    _check_bits(bits)
    if not 0 <= value < (1 << bits):
        raise StatusListError("value does not fit in bits")
    if index < 0 or (index + 1) * bits > len(data) * 8:
        raise StatusListError("index out of range")
    position = index * bits
    mask = ((1 << bits) - 1) << (position % 8)
    byte = position // 8
    data[byte] = (data[byte] & ~mask) | (value << (position % 8))


def redis_offset(index: int, bits: int) -> int:
    """Bit offset for Redis ``BITFIELD ... u<bits> <offset>`` that reads entry ``index``.

    Redis counts bit 0 as the most significant bit of a byte and reads a field most
    significant bit first. Entry ``index`` occupies LSB-numbered bits ``s .. s+bits-1`` of
    its byte (``s = index * bits % 8``), which are MSB-numbered ``7-s-bits+1 .. 7-s``; read
    from there, the field comes out as the entry's value with its bits in the right order.
    """
    _check_bits(bits)
    position = index * bits
    return (position // 8) * 8 + (8 - position % 8 - bits)
