"""poai.governance.contracts: loading the committed asset, and clear errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from poai.governance.contracts import (
    DATASET_DAO,
    GENESIS_CONTRACTS_PATH,
    REGISTRY,
    GenesisContractsError,
    load_genesis_contracts,
    parse_genesis_contracts,
)


def test_committed_asset_loads() -> None:
    c = load_genesis_contracts()
    assert c.registry == bytes.fromhex("027281162eBfcE0a07a1aC044c51eB7ebB736d36")
    assert c.dataset_dao == bytes.fromhex("48c4732887a0d712585d39266601477d4A6CB149")
    names = {e.get("name") for e in c.abis[REGISTRY]}
    assert {"activeSnapshot", "snapshot", "expert", "layers", "expertsPerLayer"} <= names
    assert "activeDataset" in {e.get("name") for e in c.abis[DATASET_DAO]}
    assert len(c.alloc) == len(c.addresses) == 6


def test_asset_abis_match_the_bindings() -> None:
    root = Path(__file__).resolve().parents[2]
    c = load_genesis_contracts()
    for name in (REGISTRY, DATASET_DAO):
        source = json.loads((root / "bindings" / "abi" / f"{name}.json").read_text())
        assert c.abis[name] == source["abi"]


def test_bad_documents_are_refused(tmp_path: Path) -> None:
    good = json.loads(GENESIS_CONTRACTS_PATH.read_text())
    with pytest.raises(GenesisContractsError, match="expected a JSON object"):
        parse_genesis_contracts([])
    with pytest.raises(GenesisContractsError, match="missing object 'abi'"):
        parse_genesis_contracts({k: v for k, v in good.items() if k != "abi"})
    bad = dict(good, contracts=dict(good["contracts"], ModelRegistry="0x1234"))
    with pytest.raises(GenesisContractsError, match="contracts.ModelRegistry: expected 20 bytes"):
        parse_genesis_contracts(bad)
    bad = dict(good, contracts={k: v for k, v in good["contracts"].items() if k != DATASET_DAO})
    with pytest.raises(GenesisContractsError, match="no address for DatasetDAO"):
        parse_genesis_contracts(bad)
    bad = dict(good, alloc={k: v for k, v in good["alloc"].items()
                            if k != good["contracts"][REGISTRY]})
    with pytest.raises(GenesisContractsError, match="ModelRegistry has no alloc entry"):
        parse_genesis_contracts(bad)
    with pytest.raises(GenesisContractsError, match="does not exist"):
        load_genesis_contracts(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(GenesisContractsError, match="not valid JSON"):
        load_genesis_contracts(tmp_path / "bad.json")
