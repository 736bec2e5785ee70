"""Migrations on an in-memory py-evm chain (eth-tester): deploy, wire, record, skip on re-run;
and the genesis alloc they produce, loaded into a fresh chain, serves the same views."""

import json
from pathlib import Path
from typing import Any

import genesis
import poai_bindings as B
import pytest
import runner
from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider


def _chain(alloc: dict[bytes, dict[str, Any]] | None = None) -> Web3:
    state = {
        bytes.fromhex(genesis.GENESIS_DEPLOYER[2:]): {
            "balance": 10**24,
            "nonce": 0,
            "code": b"",
            "storage": {},
        }
    }
    state.update(alloc or {})
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=state))))
    w3.eth.default_account = genesis.GENESIS_DEPLOYER
    return w3


SMALL = runner.MigrationParams(
    layers=2,
    experts_per_layer=2,
    genesis_expert_hashes=tuple(bytes([9, i]) + b"\0" * 30 for i in range(4)),
    genesis_expert_sizes=(5, 6, 7, 8),
)


def test_migrations_deploy_wire_record_and_skip(tmp_path: Path) -> None:
    w3 = _chain()
    path = tmp_path / "deployments.json"
    addrs = runner.run_migrations(w3, genesis.GENESIS_DEPLOYER_KEY, SMALL, path)
    assert set(addrs) == set(B.__dict__) & set(addrs) and len(addrs) == 6
    record = json.loads(path.read_text())
    assert record["chainId"] == w3.eth.chain_id
    assert list(record["steps"]) == [
        "001_governance",
        "002_model_registry",
        "003_dataset_dao",
        "004_inference_market",
    ]
    registry = B.ModelRegistry(w3, addrs["ModelRegistry"])
    assert registry.owner() == addrs["PoAITimelock"]
    assert B.DatasetDAO(w3, addrs["DatasetDAO"]).owner() == addrs["PoAITimelock"]
    assert B.StakedPOAI(w3, addrs["StakedPOAI"]).market() == addrs["InferenceMarket"]
    tl = B.PoAITimelock(w3, addrs["PoAITimelock"])
    assert tl.hasRole(tl.PROPOSER_ROLE(), addrs["PoAIGovernor"])
    assert not tl.hasRole(tl.DEFAULT_ADMIN_ROLE(), genesis.GENESIS_DEPLOYER)
    nonce = w3.eth.get_transaction_count(genesis.GENESIS_DEPLOYER)
    again = runner.run_migrations(w3, genesis.GENESIS_DEPLOYER_KEY, SMALL, path)
    assert again == addrs
    assert w3.eth.get_transaction_count(genesis.GENESIS_DEPLOYER) == nonce  # nothing re-sent


def test_deployments_file_of_another_chain_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"chainId": 1, "steps": {}, "contracts": {}}))
    with pytest.raises(runner.MigrationError, match="chain 1"):
        runner.run_migrations(_chain(), genesis.GENESIS_DEPLOYER_KEY, SMALL, path)


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="needs 4 expert hashes"):
        genesis.genesis_alloc({"layers": 2, "experts_per_layer": 2})
    with pytest.raises(ValueError, match="unknown genesis contract params"):
        genesis.genesis_alloc({"bogus": 1})


def test_genesis_alloc_is_deterministic_and_serves_the_views() -> None:
    params = {
        "layers": 2,
        "experts_per_layer": 2,
        "epoch_blocks": 32,
        "genesis_expert_hashes": ["0x" + (bytes([9, i]) + b"\0" * 30).hex() for i in range(4)],
        "genesis_expert_sizes": [5, 6, 7, 8],
        "genesis_dataset_key": "0x" + "ab" * 32,
    }
    alloc, contracts = genesis.genesis_state(params)
    assert genesis.genesis_alloc(params) == alloc  # same params, same bytes
    assert set(alloc) == set(contracts.values())
    for entry in alloc.values():
        assert entry["code"].startswith("0x") and len(entry["code"]) > 100
        assert entry["nonce"] == "0x1"
    # load the alloc into a fresh chain: the contracts work without being deployed there
    state = {
        bytes.fromhex(a[2:]): {
            "balance": int(e["balance"], 16),
            "nonce": int(e["nonce"], 16),
            "code": bytes.fromhex(e["code"][2:]),
            "storage": {int(k, 16): int(v, 16) for k, v in e["storage"].items()},
        }
        for a, e in alloc.items()
    }
    w3 = _chain(state)
    registry = B.ModelRegistry(w3, contracts["ModelRegistry"])
    assert registry.activeSnapshot(0) == 1
    assert registry.snapshotExperts(1) == [1, 2, 3, 4]
    assert registry.expert(4)[0] == "layer1.expert1"
    assert registry.owner() == contracts["PoAITimelock"]
    ds = B.DatasetDAO(w3, contracts["DatasetDAO"]).activeDataset(0)
    assert ds[0] == 1 and ds[3] == bytes.fromhex("ab" * 32) and ds[4] is True
    staked = B.StakedPOAI(w3, contracts["StakedPOAI"])
    assert staked.market() == contracts["InferenceMarket"]
    assert B.PoAIGovernor(w3, contracts["PoAIGovernor"]).token() == contracts["StakedPOAI"]
