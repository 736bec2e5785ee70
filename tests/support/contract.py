"""Compile tests/support/Counter.sol with py-solc-x through scripts/solc-wrapper.js (solcjs)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import solcx

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "scripts" / "solc-wrapper.js"
SOURCE = Path(__file__).with_name("Counter.sol")


@functools.lru_cache(maxsize=1)
def counter() -> dict[str, Any]:
    """{"abi": [...], "bytecode": "0x..."} of Counter."""
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"Counter.sol": {"content": SOURCE.read_text()}},
            "settings": {"evmVersion": "cancun",
                         "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
        },
        solc_binary=str(WRAPPER),
    )
    c = out["contracts"]["Counter.sol"]["Counter"]
    return {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}


@functools.lru_cache(maxsize=1)
def relay_and_counter() -> dict[str, dict[str, Any]]:
    """{"Relay": {...}, "Counter": {...}} ({"abi", "bytecode"} each) from one compilation:
    Relay (tests/support/Relay.sol) calls a Counter."""
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"Counter.sol": {"content": SOURCE.read_text()},
                        "Relay.sol": {"content": SOURCE.with_name("Relay.sol").read_text()}},
            "settings": {"evmVersion": "cancun",
                         "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
        },
        solc_binary=str(WRAPPER),
    )
    return {name: {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
            for name, c in (("Relay", out["contracts"]["Relay.sol"]["Relay"]),
                            ("Counter", out["contracts"]["Counter.sol"]["Counter"]))}
