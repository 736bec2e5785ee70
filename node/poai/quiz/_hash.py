"""Keccak-256 and fixed-width integer encodings shared by the consensus functions."""

from __future__ import annotations

from eth_hash.auto import keccak

UINT64_MAX = (1 << 64) - 1


def keccak256(data: bytes) -> bytes:
    return keccak(data)


def uint64be(value: int) -> bytes:
    """8-byte big-endian encoding; rejects anything outside [0, 2**64)."""
    if type(value) is not int:
        raise TypeError(f"expected int, got {type(value).__name__}")
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"{value} does not fit in a uint64")
    return value.to_bytes(8, "big")


def uint32be(value: int) -> bytes:
    if not 0 <= value < 1 << 32:
        raise ValueError(f"{value} does not fit in a uint32")
    return value.to_bytes(4, "big")


def require_bytes32(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {len(value)}")
    return bytes(value)
