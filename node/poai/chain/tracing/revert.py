"""A revert's reason as geth's abi.UnpackRevert reads it: `Error(string)` and `Panic(uint256)`."""

from __future__ import annotations

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

PANIC_REASONS = {
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


def revert_reason(data: bytes) -> str | None:
    """The reason in revert data, None for anything else (a custom error, no data)."""
    if len(data) < 4:
        return None
    body = data[4:]
    if data[:4] == ERROR_SELECTOR:
        if len(body) < 64:
            return None
        offset = int.from_bytes(body[:32], "big")
        if offset + 32 > len(body):
            return None
        length = int.from_bytes(body[offset:offset + 32], "big")
        if offset + 32 + length > len(body):
            return None
        try:
            return body[offset + 32:offset + 32 + length].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if data[:4] == PANIC_SELECTOR and len(body) >= 32:
        code = int.from_bytes(body[:32], "big")
        return PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    return None


__all__ = ["revert_reason"]
