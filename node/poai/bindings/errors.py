"""Revert data in words: ``Error(string)``, ``Panic(uint256)`` and the custom errors of any ABI.

One decoder for the bindings, the CLI commands and the node's governance reader, so a revert
reads the same everywhere: ``InsufficientStake(available=5, needed=10)``, ``reverted: not
owner``, ``panic 0x11 (arithmetic underflow or overflow)``.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode
from eth_utils.abi import collapse_if_tuple
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

ERROR_SELECTOR = keccak(text="Error(string)")[:4]
PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]

# Solidity's panic codes (docs: "Panic via assert and error codes").
PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "conversion to an invalid enum value",
    0x22: "incorrectly encoded storage byte array",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory (allocation too large)",
    0x51: "call to a zero-initialised internal function",
}


@dataclass(frozen=True)
class ErrorSpec:
    """A custom error of an ABI: its name, argument names and ABI types."""

    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.arg_types)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]


@dataclass(frozen=True)
class DecodedRevert:
    """What a revert said. ``kind`` is "error" (Error(string)), "panic", "custom", "empty" or
    "unknown"; ``args`` holds the decoded arguments by name (``reason`` / ``code`` for the
    built-in two); ``str()`` is the one-line text a user reads."""

    kind: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""

    def __str__(self) -> str:
        if self.kind == "empty":
            return "reverted without a reason"
        if self.kind == "error":
            return f"reverted: {self.args['reason']}"
        if self.kind == "panic":
            code = int(self.args["code"])
            return f"panic 0x{code:02x} ({PANIC_CODES.get(code, 'unknown panic code')})"
        if self.kind == "unknown":
            return f"reverted with unknown error 0x{self.data.hex()}"
        if self.args.get("<undecodable>"):
            return f"{self.name}(<undecodable arguments 0x{self.data[4:].hex()}>)"
        shown = ", ".join(f"{k}={format_value(v)}" for k, v in self.args.items())
        return f"{self.name}({shown})"


def format_value(value: Any) -> str:
    """An argument as a user reads it: bytes as 0x hex, tuples and lists element by element."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return str(value)


def _arg_name(name: str, i: int) -> str:
    name = name or f"arg{i}"
    return name + "_" if keyword.iskeyword(name) else name


def error_specs(abi: Iterable[Mapping[str, Any]]) -> list[ErrorSpec]:
    """The custom errors declared in one ABI (a contract's ABI includes inherited ones)."""
    specs = []
    for entry in abi:
        if entry.get("type") != "error":
            continue
        inputs = entry.get("inputs", [])
        specs.append(ErrorSpec(
            name=str(entry["name"]),
            arg_names=tuple(_arg_name(str(p.get("name", "")), i) for i, p in enumerate(inputs)),
            arg_types=tuple(collapse_if_tuple(dict(p)) for p in inputs),
        ))
    return specs


class ErrorTable:
    """Custom errors by selector, gathered from any number of ABIs."""

    def __init__(self, abis: Iterable[Iterable[Mapping[str, Any]]] = ()) -> None:
        self._by_selector: dict[bytes, ErrorSpec] = {}
        for abi in abis:
            self.add(abi)

    def add(self, abi: Iterable[Mapping[str, Any]]) -> None:
        for spec in error_specs(abi):
            self._by_selector.setdefault(spec.selector, spec)

    def get(self, selector: bytes) -> ErrorSpec | None:
        return self._by_selector.get(bytes(selector))

    def __len__(self) -> int:
        return len(self._by_selector)


def decode_revert_data(data: bytes, table: ErrorTable) -> DecodedRevert:
    """Decode a revert's return data with the custom errors of ``table``."""
    data = bytes(data)
    if len(data) < 4:
        return DecodedRevert("empty", "", data=data)
    selector, body = data[:4], data[4:]
    if selector == ERROR_SELECTOR:
        try:
            return DecodedRevert("error", "Error", {"reason": decode(["string"], body)[0]}, data)
        except Exception:  # noqa: BLE001 - eth_abi raises several types for a bad payload
            return DecodedRevert("unknown", "Error", data=data)
    if selector == PANIC_SELECTOR:
        try:
            return DecodedRevert("panic", "Panic", {"code": decode(["uint256"], body)[0]}, data)
        except Exception:  # noqa: BLE001
            return DecodedRevert("unknown", "Panic", data=data)
    spec = table.get(selector)
    if spec is None:
        return DecodedRevert("unknown", "", data=data)
    try:
        values = decode(list(spec.arg_types), body)
    except Exception:  # noqa: BLE001 - a malformed payload still names the error
        return DecodedRevert("custom", spec.name, {"<undecodable>": True}, data)
    args = {name: _checksummed(value, abi_type)
            for name, value, abi_type in zip(spec.arg_names, values, spec.arg_types, strict=True)}
    return DecodedRevert("custom", spec.name, args, data)


def _checksummed(value: Any, abi_type: str) -> Any:
    """Addresses as web3 returns them (EIP-55 checksum), in arrays too."""
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if abi_type.startswith("address[") and isinstance(value, list | tuple):
        return [_checksummed(v, abi_type[: abi_type.rindex("[")]) for v in value]
    return value


def revert_data_of(exc: BaseException) -> bytes | None:
    """The revert data carried by a web3 ``ContractLogicError`` (None when it has none)."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return None
