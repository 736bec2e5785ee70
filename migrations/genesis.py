"""The contracts' genesis state: run the migrations on an in-memory py-evm chain (eth-tester)
and dump the deployed accounts (code, storage, balance, nonce) in genesis "alloc" form.

The addresses are fixed: they follow from GENESIS_DEPLOYER_KEY and the step order (CREATE
addresses = f(deployer, nonce)), so every node building genesis with the same params gets the
same alloc. The deployer itself is left out of the alloc (it has no balance or nonce on chain; a
CREATE from it later would collide with the existing code and fail).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from eth.db.account import AccountDB
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import MigrationParams, run_migrations  # noqa: E402

# Public on purpose: only used to derive the genesis contract addresses.
GENESIS_DEPLOYER_KEY = "0x" + keccak(b"poai genesis deployer").hex()
GENESIS_DEPLOYER = Account.from_key(GENESIS_DEPLOYER_KEY).address


@contextmanager
def _recording_storage_writes() -> Iterator[set[tuple[bytes, int]]]:
    """Records every (address, slot) written, since a storage trie keeps only hashed slot keys."""
    touched: set[tuple[bytes, int]] = set()
    original = AccountDB.set_storage

    def set_storage(self: AccountDB, address: bytes, slot: int, value: int) -> None:
        touched.add((bytes(address), slot))
        original(self, address, slot, value)

    AccountDB.set_storage = set_storage  # type: ignore[method-assign]
    try:
        yield touched
    finally:
        AccountDB.set_storage = original  # type: ignore[method-assign]


def params_from_dict(params: dict[str, Any] | MigrationParams | None) -> MigrationParams:
    """Accepts MigrationParams, a dict of its fields (hex strings allowed for bytes), or None."""
    if params is None:
        return MigrationParams()
    if isinstance(params, MigrationParams):
        return params
    known = {f.name for f in fields(MigrationParams)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown genesis contract params: {sorted(unknown)}")
    defaults = asdict(MigrationParams())
    values: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(defaults[name], bytes):
            value = (
                bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
            )
        elif isinstance(defaults[name], tuple):
            value = tuple(
                bytes.fromhex(v.removeprefix("0x")) if isinstance(v, str) else v for v in value
            )
        values[name] = value
    return MigrationParams(**values)


def genesis_alloc(
    params: dict[str, Any] | MigrationParams | None = None,
) -> dict[str, dict[str, Any]]:
    """Alloc entries {address: {"code", "storage", "balance", "nonce"}} (hex strings, geth style)
    for the contracts; `genesis_state` also returns which contract is at which address."""
    return genesis_state(params)[0]


def genesis_state(
    params: dict[str, Any] | MigrationParams | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(alloc, contract name -> address)."""
    p = params_from_dict(params)
    p.validate()
    deployer = bytes.fromhex(GENESIS_DEPLOYER[2:])
    backend = PyEVMBackend(
        genesis_state={deployer: {"balance": 10**24, "nonce": 0, "code": b"", "storage": {}}}
    )
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
    # eth-tester makes calls from its own unfunded default account and then rejects them.
    w3.eth.default_account = GENESIS_DEPLOYER
    with tempfile.TemporaryDirectory() as tmp, _recording_storage_writes() as touched:
        contracts = run_migrations(w3, GENESIS_DEPLOYER_KEY, p, Path(tmp) / "deployments.json")
    alloc: dict[str, dict[str, Any]] = {}
    for address in sorted(contracts.values()):
        raw = bytes.fromhex(address[2:])
        storage = {}
        for who, slot in sorted(touched):
            if who != raw:
                continue
            value = int.from_bytes(w3.eth.get_storage_at(address, slot), "big")
            if value:
                storage["0x" + slot.to_bytes(32, "big").hex()] = (
                    "0x" + value.to_bytes(32, "big").hex()
                )
        alloc[to_checksum_address(address)] = {
            "code": "0x" + bytes(w3.eth.get_code(address)).hex(),
            "storage": storage,
            "balance": hex(w3.eth.get_balance(address)),
            "nonce": hex(w3.eth.get_transaction_count(address)),
        }
    _checkpoints_at_genesis(alloc, contracts["PoAIGovernor"], p.quorum_percent)
    return alloc, contracts


_KEY_BITS = 48  # OpenZeppelin Checkpoints.Checkpoint208: uint48 key (low bits), uint208 value


def _checkpoints_at_genesis(alloc: dict[str, dict[str, Any]], governor: str, quorum: int) -> None:
    """Move the Governor's quorum-numerator checkpoint to block 0.

    GovernorVotesQuorumFraction records its numerator at `clock()` = the eth-tester block that
    deployed it (3); on the real chain, whose history starts at genesis, quorum(t) would then
    be 0 for t < 3. The history is a Trace208: a length slot L (here 1) and entries at
    keccak(L); the one entry whose value is the numerator gets key 0."""
    storage = alloc[to_checksum_address(governor)]["storage"]
    found = []
    for slot_hex, length_hex in storage.items():
        if int(length_hex, 16) != 1:
            continue
        entry = "0x" + keccak(int(slot_hex, 16).to_bytes(32, "big")).hex()
        if entry not in storage:
            continue
        value = int(storage[entry], 16)
        if value >> _KEY_BITS == quorum and value & ((1 << _KEY_BITS) - 1) > 0:
            found.append(entry)
    if len(found) != 1:
        raise RuntimeError(
            f"expected one quorum checkpoint in the Governor's storage, found {len(found)}"
        )
    storage[found[0]] = "0x" + (quorum << _KEY_BITS).to_bytes(32, "big").hex()
