"""Parsing and formatting of JSON-RPC quantities, data and addresses (execution-apis rules)."""

from __future__ import annotations

import functools
from typing import Any

from eth_typing import Address
from eth_utils.address import to_checksum_address

from poai.rpc.errors import InvalidParams


def qty(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + value.hex()


@functools.lru_cache(maxsize=8192)
def addr(value: bytes) -> str:
    # EIP-55 costs a keccak per call and the same few addresses recur in every block.
    return to_checksum_address(value)


def parse_qty(value: Any, name: str = "quantity") -> int:
    if isinstance(value, bool):
        raise InvalidParams(f"invalid {name}: expected hex string")
    if isinstance(value, int):  # lenient like geth for tools that send numbers
        if value < 0:
            raise InvalidParams(f"invalid {name}: negative")
        return value
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or len(value) < 3:
        raise InvalidParams(f"invalid {name}: {value!r} is not a hex quantity")
    try:
        return int(value, 16)
    except ValueError:
        raise InvalidParams(f"invalid {name}: {value!r} is not a hex quantity") from None


def parse_data(value: Any, name: str = "data") -> bytes:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise InvalidParams(f"invalid {name}: expected 0x-prefixed hex string")
    body = value[2:]
    if len(body) % 2:
        raise InvalidParams(f"invalid {name}: hex string of odd length")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise InvalidParams(f"invalid {name}: not hex") from None


def parse_address(value: Any, name: str = "address") -> Address:
    raw = parse_data(value, name)
    if len(raw) != 20:
        raise InvalidParams(f"invalid {name}: expected 20 bytes, got {len(raw)}")
    return Address(raw)


def parse_hash(value: Any, name: str = "hash") -> bytes:
    raw = parse_data(value, name)
    if len(raw) != 32:
        raise InvalidParams(f"invalid {name}: expected 32 bytes, got {len(raw)}")
    return raw


def param(params: list[Any], index: int, name: str, default: Any = ...) -> Any:
    if index < len(params) and params[index] is not None:
        return params[index]
    if default is ...:
        raise InvalidParams(f"missing value for required argument {index} ({name})")
    return default
