"""Governance in the chain: genesis contracts from the config, their checks, and epoch assets
read from governance state through the chain's own quiz-context source."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from eth.db.atomic import AtomicDB
from eth_typing import Address
from poai.chain.chain import create_genesis, genesis_hash
from poai.chain.config import (
    DEFAULT_CONFIG,
    DEFAULT_GENESIS_CONTRACTS,
    ChainConfig,
    ConfigError,
    config_contracts,
    load_genesis_config,
    parse_genesis_config,
)
from poai.chain.epochs import EpochQuizContexts
from poai.chain.governed import GovernedEpochAssets, SeedStateUnavailable
from poai.governance.contracts import load_genesis_contracts

ASSETS = DEFAULT_CONFIG.parent


@pytest.fixture(scope="module")
def devnet() -> ChainConfig:
    return load_genesis_config()


def test_devnet_genesis_holds_the_governance_contracts(devnet: ChainConfig) -> None:
    assert devnet.genesis_contracts == DEFAULT_GENESIS_CONTRACTS
    chain = create_genesis(AtomicDB(), devnet)
    state = chain.get_vm(chain.get_canonical_head()).state
    asset = load_genesis_contracts()
    assert set(asset.addresses) == {"StakedPOAI", "PoAITimelock", "PoAIGovernor",
                                    "ModelRegistry", "DatasetDAO", "InferenceMarket"}
    for name, addr in asset.addresses.items():
        entry = asset.alloc[next(a for a in asset.alloc if bytes.fromhex(a[2:]) == addr)]
        assert state.get_code(Address(addr)) == bytes.fromhex(entry["code"][2:]), name
        for slot, value in entry["storage"].items():
            assert state.get_storage(Address(addr), int(slot, 16)) == int(value, 16)
    # The dev accounts are still funded.
    for addr, acct in devnet.alloc.items():
        assert state.get_balance(Address(addr)) == acct.balance


def test_genesis_hash_changes_with_the_contracts(devnet: ChainConfig) -> None:
    bare = dataclasses.replace(devnet, genesis_contracts=None)
    assert genesis_hash(bare) != genesis_hash(devnet)
    assert config_contracts(bare) is None


def _devnet_json() -> dict[str, object]:
    return json.loads(DEFAULT_CONFIG.read_text())


def test_genesis_contracts_field(tmp_path: Path) -> None:
    data = _devnet_json()
    assert parse_genesis_config(data, ASSETS).genesis_contracts == DEFAULT_GENESIS_CONTRACTS
    data["genesisContracts"] = None
    assert parse_genesis_config(data, ASSETS).genesis_contracts is None
    (tmp_path / "gc.json").write_text(DEFAULT_GENESIS_CONTRACTS.read_text())
    data["genesisContracts"] = "gc.json"  # relative to the config's directory
    assert parse_genesis_config(data, tmp_path).genesis_contracts == tmp_path / "gc.json"


@pytest.mark.parametrize("mutate, message", [
    (lambda d, t: d.update(genesisContracts="nope.json"), "does not exist"),
    (lambda d, t: d.update(genesisContracts=7), "expected a path or null"),
    (lambda d, t: d["quiz"].update(epoch_blocks=8), "built for epochs of 32 blocks"),
    (lambda d, t: (t / "bad.json").write_text("{x") and d.update(genesisContracts="bad.json"),
     "genesisContracts"),
    (lambda d, t: d["alloc"].update({"0x027281162eBfcE0a07a1aC044c51eB7ebB736d36": {
        "balance": "1"}}), "collide with the genesis contracts"),
])
def test_bad_genesis_contracts_are_config_errors(
    mutate: object, message: str, tmp_path: Path
) -> None:
    data = _devnet_json()
    mutate(data, tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message):
        parse_genesis_config(data, tmp_path)


def test_epoch_assets_come_from_governance_once_per_seed(
    devnet: ChainConfig, tmp_path: Path
) -> None:
    from poai.chain.chain import chain_class_for

    assets = GovernedEpochAssets(devnet, tmp_path / "blobs", tmp_path / "datasets")
    calls = []
    real = assets.resolver.resolve
    assets.resolver.resolve = lambda *a, **k: calls.append(a[0]) or real(*a, **k)  # type: ignore[method-assign]
    cls = chain_class_for(devnet, assets)
    chain = create_genesis(AtomicDB(), devnet, cls)
    assert type(chain) is cls and cls.epoch_assets is assets
    genesis = chain.get_canonical_head()
    child = chain.create_header_from_parent(genesis, timestamp=genesis.timestamp + 1)
    source = chain.consensus_context.source
    ctx = source.quiz_context_for(child)
    assert ctx.manifest_hash == devnet.model_manifest
    assert ctx.dataset_path == str(devnet.dataset.path)
    assert calls == [0]
    # Another chain object of the same class (a block template) shares the reading.
    again = cls(chain.chaindb.db).consensus_context.source.quiz_context_for(child)
    assert again == ctx and calls == [0]
    assert assets.cached(genesis.hash) is not None


def test_unstored_seed_state_and_sourceless_governed_quizzes_are_refused(
    devnet: ChainConfig,
) -> None:
    chain = create_genesis(AtomicDB(), devnet)
    genesis = chain.get_canonical_head()
    stranger = genesis.copy(extra_data=b"not stored")
    with pytest.raises(SeedStateUnavailable, match="not stored"):
        chain.state_after(stranger)
    # A governed chain's quiz needs its asset source: contexts without one are refused
    # rather than judging a governed epoch with the genesis assets.
    with pytest.raises(ValueError, match="epoch asset source"):
        EpochQuizContexts(devnet, chain.headerdb)
    with pytest.raises(ValueError, match="both"):
        EpochQuizContexts(devnet, chain.headerdb, assets=None, state_at=chain.state_after)
