"""The committed genesis contracts asset: fresh against migrations/ and the genesis assets, and
it names the genesis model and dataset as snapshot 1 / dataset 1, active from epoch 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import build_genesis_contracts as bgc
import pytest
from poai.governance.contracts import GENESIS_CONTRACTS_PATH
from poai.model.genesis import (
    GENESIS_MODEL_DIR,
    genesis_dataset_info,
    genesis_manifest_hash,
    genesis_store,
)
from poai.model.snapshot import read_manifest


@pytest.fixture(scope="module")
def fresh() -> dict[str, Any]:
    return bgc.build()


def test_committed_asset_is_fresh(fresh: dict[str, Any]) -> None:
    committed = GENESIS_CONTRACTS_PATH.read_text()
    assert committed == bgc.render(fresh), (
        "node/poai/assets/genesis_contracts.json is stale: "
        "run .venv/bin/python scripts/build_genesis_contracts.py"
    )


def test_build_is_deterministic(fresh: dict[str, Any]) -> None:
    assert bgc.render(bgc.build()) == bgc.render(fresh)


def test_params_name_the_genesis_model_and_dataset(fresh: dict[str, Any]) -> None:
    p = fresh["params"]
    manifest = read_manifest(genesis_store(), genesis_manifest_hash())
    assert p["genesis_trunk_hash"] == "0x" + manifest.trunk
    slots = [h for row in manifest.experts for h in row]
    assert p["genesis_expert_hashes"] == ["0x" + h for h in slots]
    assert p["genesis_expert_sizes"] == [(GENESIS_MODEL_DIR / h).stat().st_size for h in slots]
    assert (p["layers"], p["experts_per_layer"]) == (
        manifest.spec.num_hidden_layers, manifest.spec.num_local_experts)
    info = genesis_dataset_info()
    assert p["genesis_dataset_hash"] == "0x" + info["sha256"]
    assert p["genesis_dataset_records"] == info["records"]
    assert p["genesis_dataset_key"] == "0x" + info["key"]
    devnet = json.loads((bgc.ASSETS / "devnet.json").read_text())
    assert p["epoch_blocks"] == devnet["quiz"]["epoch_blocks"]


def test_contract_addresses_are_the_documented_ones(fresh: dict[str, Any]) -> None:
    doc = (bgc.ROOT / "docs" / "CONTRACTS.md").read_text()
    assert set(fresh["contracts"]) == {
        "StakedPOAI", "PoAITimelock", "PoAIGovernor", "ModelRegistry", "DatasetDAO",
        "InferenceMarket",
    }
    for name, address in fresh["contracts"].items():
        assert f"| {name} | `{address}` |" in doc
        assert fresh["alloc"][address]["code"] != "0x"


def test_check_mode_reports_a_stale_file(
    fresh: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bgc, "build", lambda: fresh)
    out = tmp_path / "genesis_contracts.json"
    out.write_text("{}\n")
    assert bgc.main(["--check", "--out", str(out)]) == 1
    assert bgc.main(["--out", str(out)]) == 0
    assert bgc.main(["--check", "--out", str(out)]) == 0
    assert out.read_text() == bgc.render(fresh)


def _copy_inputs(tmp: Path) -> Path:
    assets = tmp / "assets"
    (assets / "model").mkdir(parents=True)
    (assets / "dataset").mkdir()
    shutil.copy(bgc.ASSETS / "devnet.json", assets / "devnet.json")
    shutil.copy(bgc.ASSETS / "dataset" / "GENESIS.json", assets / "dataset" / "GENESIS.json")
    digest = genesis_manifest_hash()
    shutil.copy(GENESIS_MODEL_DIR / "MANIFEST", assets / "model" / "MANIFEST")
    shutil.copy(GENESIS_MODEL_DIR / digest, assets / "model" / digest)
    return assets


def test_bad_genesis_inputs_are_refused(tmp_path: Path) -> None:
    assets = _copy_inputs(tmp_path)
    with pytest.raises(bgc.GenesisInputError, match="genesis expert blob .* missing"):
        bgc.devnet_params(assets)
    for h in read_manifest(genesis_store(), genesis_manifest_hash()).blob_hashes():
        shutil.copy(GENESIS_MODEL_DIR / h, assets / "model" / h)
    assert bgc.devnet_params(assets)["layers"] == 4
    devnet = json.loads((assets / "devnet.json").read_text())
    devnet["modelManifest"] = "ab" * 32
    (assets / "devnet.json").write_text(json.dumps(devnet))
    with pytest.raises(bgc.GenesisInputError, match="modelManifest"):
        bgc.devnet_params(assets)
    (assets / "devnet.json").write_text("{not json")
    with pytest.raises(bgc.GenesisInputError, match="not valid JSON"):
        bgc.devnet_params(assets)
    (assets / "devnet.json").unlink()
    with pytest.raises(bgc.GenesisInputError, match="does not exist"):
        bgc.devnet_params(assets)


def test_committed_fast_dev_asset_is_fresh() -> None:
    """assets/genesis_contracts_fast.json (the devnet-fast chain's): same migrations and genesis
    assets, the fast timing overrides."""
    assert bgc.FAST_OUTPUT.read_text() == bgc.render(bgc.build(overrides=bgc.FAST_OVERRIDES)), (
        "node/poai/assets/genesis_contracts_fast.json is stale: "
        "run .venv/bin/python scripts/build_genesis_contracts.py --fast"
    )
