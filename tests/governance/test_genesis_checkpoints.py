"""Block-numbered checkpoints in the genesis contracts start at block 0: the Governor's quorum
numerator, recorded at the eth-tester block that deployed it, is moved to genesis so that
quorum(t) is the configured fraction from block 0 on (migrations/genesis.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
import genesis  # noqa: E402  (migrations/genesis.py, a script directory)


def test_quorum_numerator_holds_from_block_0(bench: Any) -> None:
    b = bench
    gov = b.contracts.addresses["PoAIGovernor"]
    contract = b.w3.eth.contract(address=b.w3.to_checksum_address(gov),
                                 abi=_governor_abi())
    at = contract.get_function_by_signature("quorumNumerator(uint256)")
    assert [at(t).call() for t in range(4)] == [4, 4, 4, 4]
    assert contract.get_function_by_signature("quorumNumerator()")().call() == 4


def test_checkpoint_rewrite_needs_exactly_one_checkpoint() -> None:
    addr = "0x0A427de65f28AF94971FED77422fa1667D34a35b"
    with pytest.raises(RuntimeError, match="one quorum checkpoint"):
        genesis._checkpoints_at_genesis({addr: {"storage": {}}}, addr, 4)
    length_slot = "0x" + (10).to_bytes(32, "big").hex()
    entry = "0x" + genesis.keccak((10).to_bytes(32, "big")).hex()
    alloc = {addr: {"storage": {length_slot: "0x01", entry: hex((4 << 48) | 3)}}}
    genesis._checkpoints_at_genesis(alloc, addr, 4)
    assert int(alloc[addr]["storage"][entry], 16) == 4 << 48


def _governor_abi() -> list[dict[str, object]]:
    return json.loads((ROOT / "bindings" / "abi" / "PoAIGovernor.json").read_text())["abi"]
