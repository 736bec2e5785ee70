"""The governance contracts in genesis: their addresses, genesis accounts and the ABIs the node
reads, from the committed asset `assets/genesis_contracts.json`.

The asset is built by `scripts/build_genesis_contracts.py` (migrations run on an in-memory chain
once, at build time) so the node needs neither eth-tester nor a Solidity compiler at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
GENESIS_CONTRACTS_PATH = ASSETS_DIR / "genesis_contracts.json"

REGISTRY = "ModelRegistry"
DATASET_DAO = "DatasetDAO"


class GenesisContractsError(ValueError):
    """The genesis contracts asset is missing or malformed; the message names what."""


@dataclass(frozen=True)
class GenesisContracts:
    addresses: dict[str, bytes]  # contract name -> 20-byte address
    alloc: dict[str, dict[str, Any]]  # geth-style genesis alloc: {"0x..": {code, storage, ..}}
    abis: dict[str, list[dict[str, Any]]]  # contract name -> ABI (the contracts the node reads)

    @property
    def registry(self) -> bytes:
        return self.addresses[REGISTRY]

    @property
    def dataset_dao(self) -> bytes:
        return self.addresses[DATASET_DAO]


def _address(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise GenesisContractsError(f"{where}: expected a hex address, got {value!r}")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError as exc:
        raise GenesisContractsError(f"{where}: not hex: {value!r}") from exc
    if len(raw) != 20:
        raise GenesisContractsError(f"{where}: expected 20 bytes, got {len(raw)}")
    return raw


def parse_genesis_contracts(doc: Any) -> GenesisContracts:
    """A GenesisContracts from the asset's JSON object (checks every field the node uses)."""
    if not isinstance(doc, dict):
        raise GenesisContractsError("genesis contracts: expected a JSON object")
    for key in ("contracts", "alloc", "abi"):
        if not isinstance(doc.get(key), dict):
            raise GenesisContractsError(f"genesis contracts: missing object {key!r}")
    addresses = {
        str(name): _address(addr, f"contracts.{name}") for name, addr in doc["contracts"].items()
    }
    for name in (REGISTRY, DATASET_DAO):
        if name not in addresses:
            raise GenesisContractsError(f"genesis contracts: no address for {name}")
        if not isinstance(doc["abi"].get(name), list):
            raise GenesisContractsError(f"genesis contracts: no ABI for {name}")
    alloc_addrs = {_address(a, f"alloc[{a}]") for a in doc["alloc"]}
    for name, addr in addresses.items():
        if addr not in alloc_addrs:
            raise GenesisContractsError(f"genesis contracts: {name} has no alloc entry")
    return GenesisContracts(addresses=addresses, alloc=dict(doc["alloc"]), abis=dict(doc["abi"]))


def load_genesis_contracts(path: str | Path | None = None) -> GenesisContracts:
    """Read the genesis contracts asset (default: the committed devnet one)."""
    p = Path(path) if path is not None else GENESIS_CONTRACTS_PATH
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise GenesisContractsError(
            f"{p} does not exist: run scripts/build_genesis_contracts.py"
        ) from exc
    except json.JSONDecodeError as exc:
        raise GenesisContractsError(f"{p} is not valid JSON: {exc}") from exc
    return parse_genesis_contracts(doc)
