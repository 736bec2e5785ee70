"""Python bindings for the PoAI contracts, shipped in the `poai` package.

    from web3 import Web3
    from poai.bindings import deployed, decode_revert, ContractRevert

    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:8545"))
    c = deployed(w3)                       # the genesis contracts of the bundled devnet
    c.ModelRegistry.expert(1)              # Expert(name='...', layer=0, ...)
    c.StakedPOAI.deposit().transact({"from": ..., "value": ...})
    try:
        c.PoAIGovernor.castVote(7, 1).transact({"from": ...})
    except ContractRevert as exc:
        print(exc)  # PoAIGovernor.castVote(uint256,uint8): GovernorUnexpectedProposalState(...)

The ABIs (``abi/<Contract>.json``: abi, bytecode, deployedBytecode) are generated from the
compiled contracts by ``.venv/bin/python scripts/gen_bindings.py`` (which also writes the
repository's ``bindings/abi``); the code here reads whatever they declare, nothing is per
function.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from web3 import Web3

from poai.bindings.contract import (
    BoundFunction,
    Contract,
    ContractRevert,
    name_outputs,
    name_value,
)
from poai.bindings.errors import (
    DecodedRevert,
    ErrorSpec,
    ErrorTable,
    decode_revert_data,
    format_value,
    revert_data_of,
)

ABI_DIR = Path(__file__).resolve().parent / "abi"
# The bundled devnet's genesis contracts (addresses; poai.governance.contracts reads the rest).
GENESIS_CONTRACTS = Path(__file__).resolve().parent.parent / "assets" / "genesis_contracts.json"

__all__ = [
    "ABI_DIR", "BindingError", "BoundFunction", "Contract", "ContractRevert", "DecodedRevert",
    "ErrorSpec", "ErrorTable", "bind", "contract_names", "decode_revert", "deploy_transaction",
    "deployed", "error_table", "format_value", "load_artifact", "name_outputs", "name_value",
    "revert_data_of", "revert_of_transaction",
]


class BindingError(ValueError):
    """No ABI for that contract name, or an unreadable ABI file."""


def contract_names() -> list[str]:
    """Contracts with an ABI in the package."""
    return sorted(p.stem for p in ABI_DIR.glob("*.json"))


@functools.cache
def load_artifact(name: str) -> dict[str, Any]:
    """``{"abi", "bytecode", "deployedBytecode", ...}`` of contract ``name``."""
    path = ABI_DIR / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise BindingError(f"no ABI for contract {name!r}; known: "
                           f"{', '.join(contract_names())}") from None
    except json.JSONDecodeError as exc:
        raise BindingError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data.get("abi"), list):
        raise BindingError(f"{path} has no 'abi' list")
    return data


@functools.cache
def error_table() -> ErrorTable:
    """The custom errors of every contract in the package (OpenZeppelin's included)."""
    return ErrorTable(load_artifact(n)["abi"] for n in contract_names())


def decode_revert(data: bytes, abi: list[dict[str, Any]] | None = None) -> DecodedRevert:
    """Revert data in words, with the errors of ``abi`` and of every PoAI contract."""
    table = error_table()
    if abi is not None:
        table = ErrorTable([abi])
        for name in contract_names():
            table.add(load_artifact(name)["abi"])
    return decode_revert_data(data, table)


def bind(w3: Web3, name: str, address: str | bytes) -> Contract:
    """Contract ``name`` (its ABI from the package) at ``address``."""
    return Contract(w3, name, address, load_artifact(name)["abi"], errors=error_table())


def deployed(w3: Web3, addresses: Mapping[str, str | bytes] | None = None) -> SimpleNamespace:
    """Every PoAI contract at its address, as attributes: ``deployed(w3).ModelRegistry``.
    ``addresses``: contract name -> address (default: the genesis contracts of the bundled
    devnet, from the package's genesis contracts asset)."""
    if addresses is None:
        try:
            addresses = json.loads(GENESIS_CONTRACTS.read_text())["contracts"]
        except (OSError, ValueError, KeyError) as exc:
            raise BindingError(f"cannot read contract addresses from {GENESIS_CONTRACTS}: "
                               f"{exc}") from None
    known = set(contract_names())
    return SimpleNamespace(**{name: bind(w3, name, addr)
                              for name, addr in addresses.items() if name in known})


def deploy_transaction(name: str, *args: Any) -> dict[str, Any]:
    """``{"data": ...}``: contract ``name``'s bytecode with its encoded constructor args."""
    art = load_artifact(name)
    factory = Web3().eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    fixed = {"gas": 0, "gasPrice": 0, "chainId": 0, "nonce": 0}  # no RPC needed
    tx: dict[str, Any] = factory.constructor(*args).build_transaction(fixed)
    return {"data": tx["data"]}


def revert_of_transaction(w3: Web3, tx_hash: bytes | str) -> DecodedRevert | None:
    """Why a mined transaction reverted, in words: it is replayed with eth_call on its block's
    parent state (as cast and ethers do); None when it did not revert or the replay succeeds
    (the revert depended on a transaction before it in the same block)."""
    from web3.exceptions import ContractLogicError, Web3Exception

    receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    if receipt["status"] == 1:
        return None
    tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    call: dict[str, Any] = {"from": tx["from"], "data": tx["input"], "value": tx["value"],
                            "gas": tx["gas"]}
    if tx.get("to") is not None:  # else a contract creation
        call["to"] = tx["to"]
    try:
        w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        data = revert_data_of(exc)
        if data is None:
            return DecodedRevert("error", "Error", {"reason": str(exc.message or exc)})
        return decode_revert_data(data, error_table())
    except Web3Exception as exc:  # out of gas and the like: the node's own words
        return DecodedRevert("error", "Error", {"reason": str(exc)})
    return None
