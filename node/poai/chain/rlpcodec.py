"""RLP encoding of already-serialized items (bytes and nested lists of bytes), by hand.

For the hot paths that know their item shapes (an account's four fields, a transaction's
signing payload): rlp's generic `encode` infers a sedes for each item and walks ABC instance
checks; these produce the same bytes directly (tests/chain/test_rlpcodec.py compares).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

Item: TypeAlias = "bytes | Sequence[Item]"


def _length_prefix(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes((offset + n,))
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def encode_string(b: bytes) -> bytes:
    """A byte string's encoding (a single byte below 0x80 is its own encoding)."""
    if len(b) == 1 and b[0] < 0x80:
        return bytes(b)
    return _length_prefix(len(b), 0x80) + b


def encode_uint(value: int) -> bytes:
    """An unsigned integer's encoding: big-endian, no leading zeros (0 is the empty string)."""
    if value < 0:
        raise ValueError(f"cannot encode negative integer {value}")
    return encode_string(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def encode_list_payload(payload: bytes) -> bytes:
    """The list whose items' encodings, concatenated, are ``payload``."""
    return _length_prefix(len(payload), 0xC0) + payload


def encode_item(item: Item) -> bytes:
    """A serialized item's encoding: bytes, or a (nested) list of them."""
    if isinstance(item, (bytes, bytearray)):
        return encode_string(bytes(item))
    return encode_list_payload(b"".join([encode_item(x) for x in item]))


__all__ = ["encode_item", "encode_list_payload", "encode_string", "encode_uint"]
