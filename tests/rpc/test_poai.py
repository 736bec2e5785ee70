"""poai_contracts and poai_modelManifest: what the node's chain says now, not only genesis."""

from __future__ import annotations

from eth_utils import is_checksum_address, to_checksum_address
from poai.governance.contracts import load_genesis_contracts
from support.devnode import DevNode
from support.rpcclient import Rpc


def test_contracts_are_empty_without_governance(rpc: Rpc) -> None:
    assert rpc.call("poai_contracts") == {}


def test_contracts_are_the_genesis_ones_as_checksum_addresses(rpc: Rpc, node: DevNode) -> None:
    genesis = load_genesis_contracts().addresses  # the devnet's real genesis contracts
    node.contracts = dict(genesis)
    got = rpc.call("poai_contracts")
    assert set(got) == set(genesis) and "ModelRegistry" in got
    for name, address in got.items():
        assert is_checksum_address(address)
        assert address == to_checksum_address(genesis[name])


def test_model_manifest_is_the_next_blocks_quiz_not_the_genesis_one(rpc: Rpc, node: DevNode
                                                                     ) -> None:
    for _ in range(3):
        node.mine_block()
    got = rpc.call("poai_modelManifest")
    assert got["manifest"] == node.governed_manifest != node.config.model_manifest
    assert got["epoch"] == "0x1"  # block 4 opens epoch 1 (4-block epochs)
    assert got["dataset"] == {"path": "/nonexistent/epoch.poaids", "key": "07" * 32}
    node.governed_manifest = "ef" * 32  # governance switched the model: answered at once
    assert rpc.call("poai_modelManifest")["manifest"] == "ef" * 32
