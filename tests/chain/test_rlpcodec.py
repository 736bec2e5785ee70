"""Hand RLP encoding: the bytes of rlp's own encoder."""

from __future__ import annotations

import random

import pytest
import rlp
from poai.chain.rlpcodec import encode_item, encode_list_payload, encode_string, encode_uint


def test_strings_and_uints_match_rlp_at_every_length_boundary() -> None:
    for n in (0, 1, 2, 55, 56, 57, 255, 256, 1024, 70_000):
        for first in (0x00, 0x7F, 0x80, 0xFF):
            b = bytes([first]) + b"\xab" * (n - 1) if n else b""
            assert encode_string(b) == rlp.encode(b)
    for value in (0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**64 - 1, 2**256 - 1, 2**2000):
        assert encode_uint(value) == rlp.encode(value)
    with pytest.raises(ValueError, match="negative"):
        encode_uint(-1)


def test_nested_lists_match_rlp() -> None:
    rng = random.Random(5)

    def item(depth: int) -> object:
        if depth > 3 or rng.random() < 0.5:
            return rng.randbytes(rng.choice([0, 1, 20, 55, 56, 200]))
        return [item(depth + 1) for _ in range(rng.randint(0, 6))]

    for _ in range(200):
        x = item(0)
        assert encode_item(x) == rlp.encode(x)  # type: ignore[arg-type]
    payload = b"".join(rlp.encode(b"\x01" * 30) for _ in range(3))  # > 55 bytes
    assert encode_list_payload(payload) == rlp.encode([b"\x01" * 30] * 3)
