from __future__ import annotations

import json
from pathlib import Path

import pytest
from poai.chain.config import DEFAULT_CONFIG, ConfigError, load_genesis_config, parse_genesis_config
from poai.chain.devaccounts import dev_accounts
from poai.quiz.dataset import file_sha256

ASSETS = DEFAULT_CONFIG.parent


def test_devnet_config_matches_the_genesis_assets() -> None:
    cfg = load_genesis_config()
    assert cfg.chain_id == 7337
    assert cfg.model_manifest == (ASSETS / "model" / "MANIFEST").read_text().strip()
    assert (cfg.model_dir / cfg.model_manifest).is_file()
    genesis = json.loads((ASSETS / "dataset" / "GENESIS.json").read_text())
    assert cfg.dataset.sha256 == genesis["sha256"] == file_sha256(cfg.dataset.path)
    assert cfg.dataset.key.hex() == genesis["key"]
    assert cfg.quiz.k == 4 and cfg.quiz.salt_len == 8 and cfg.quiz.grid_bits == 10
    assert cfg.quiz.sample_len == genesis["sample_len"] == 64
    assert cfg.target_block_time <= 5
    assert cfg.block_subsidy_wei == 5 * 10**18
    assert cfg.gas_limit == 30_000_000


def test_devnet_funds_the_ten_dev_accounts() -> None:
    cfg = load_genesis_config()
    accounts = dev_accounts(cfg.dev_mnemonic or "", cfg.dev_accounts)
    assert len(accounts) == 10
    for a in accounts:
        assert cfg.alloc[a.address].balance == 10_000 * 10**18


def _base() -> dict[str, object]:
    return json.loads(DEFAULT_CONFIG.read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("chainId"), "chainId"),
    (lambda d: d.update(gasLimit="lots"), "gasLimit"),
    (lambda d: d.update(modelManifest="xyz"), "modelManifest"),
    (lambda d: d["quiz"].update(k=9), "quiz"),
    (lambda d: d["dataset"].update(key="0x1234"), "dataset.key"),
    (lambda d: d.update(minDifficulty=0), "minDifficulty"),
    (lambda d: d.update(alloc={"0x12": {"balance": 1}}), "alloc"),
])
def test_bad_config_is_a_clear_error(mutate: object, message: str) -> None:
    data = _base()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message):
        parse_genesis_config(data, ASSETS)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_genesis_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_genesis_config(bad)


def test_dump_and_parse_round_trip() -> None:
    from poai.chain.config import dump_genesis_config

    cfg = load_genesis_config()
    again = parse_genesis_config(json.loads(json.dumps(dump_genesis_config(cfg))), Path("/"))
    assert again == cfg
