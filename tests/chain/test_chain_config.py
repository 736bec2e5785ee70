from __future__ import annotations

import json
from pathlib import Path

import pytest
from poai.chain.config import DEFAULT_CONFIG, ConfigError, load_genesis_config, parse_genesis_config
from poai.chain.devaccounts import dev_accounts
from poai.model.dataset import file_sha256

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
    (lambda d: d["qualityGate"].update(minDelta="lots"), "qualityGate.minDelta: not a decimal"),
    (lambda d: d["qualityGate"].update(minDelta="-0.1"), "qualityGate.minDelta must be"),
    (lambda d: d["qualityGate"].update(minDelta=0.004), "expected a decimal string"),
    (lambda d: d["qualityGate"].update(windows=100), "qualityGate.windows must be 256"),
    (lambda d: d["qualityGate"].update(extra=1), "unknown field"),
    (lambda d: d.update(qualityGate=[]), "qualityGate: expected an object"),
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


def test_subsidy_halves_every_four_years_of_target_block_time() -> None:
    from poai.chain.config import HALVING_PERIOD_SECONDS, halving_blocks_for
    from poai.chain.rewards import block_subsidy

    four_years = 4 * 365.25 * 24 * 3600
    assert HALVING_PERIOD_SECONDS == four_years
    cfg = load_genesis_config()
    assert cfg.halving_blocks == four_years // cfg.target_block_time
    assert cfg.target_block_time == 4 and cfg.halving_blocks == 31_557_600
    # the subsidy halves at the block mined ~4 years (at the target time) after genesis
    last_full = cfg.halving_blocks - 1
    assert block_subsidy(last_full, cfg.block_subsidy_wei, cfg.halving_blocks) == 5 * 10**18
    assert block_subsidy(cfg.halving_blocks, cfg.block_subsidy_wei,
                         cfg.halving_blocks) == 5 * 10**18 // 2
    assert cfg.halving_blocks * cfg.target_block_time <= four_years
    assert (cfg.halving_blocks + 1) * cfg.target_block_time > four_years
    for seconds in (1, 3, 12, 13):
        data = _base()
        data["targetBlockTime"] = seconds
        assert parse_genesis_config(data, ASSETS).halving_blocks == \
            halving_blocks_for(seconds) == int(four_years // seconds)
    data = _base()
    data["halvingBlocks"] = 1000  # an explicit value (test chains) still wins
    assert parse_genesis_config(data, ASSETS).halving_blocks == 1000
    with pytest.raises(ConfigError, match="targetBlockTime"):
        halving_blocks_for(0)


def test_fast_dev_chain_activates_a_model_change_within_two_minutes() -> None:
    """devnet-fast: the devnet's model, dataset, accounts and quiz, with timing short enough
    that propose -> active (at the next epoch) fits 2 minutes at the target block time."""
    fast = load_genesis_config("devnet-fast")
    dev = load_genesis_config()
    assert load_genesis_config("/nowhere/devnet-fast.json") == fast  # a recorded bundled path
    assert fast.genesis_contracts is not None
    params = json.loads(fast.genesis_contracts.read_text())["params"]
    assert params["epoch_blocks"] == fast.quiz.epoch_blocks == 8
    assert (fast.model_manifest, fast.dataset, fast.alloc, fast.chain_id) == \
        (dev.model_manifest, dev.dataset, dev.alloc, dev.chain_id)
    assert {k: v for k, v in fast.quiz.to_dict().items() if k != "epoch_blocks"} == \
        {k: v for k, v in dev.quiz.to_dict().items() if k != "epoch_blocks"}
    # propose (1 block) + delay + vote + queue (1) + execute (1) + up to 2 epochs to activation
    blocks = 3 + params["voting_delay_blocks"] + params["voting_period_blocks"] + \
        2 * params["epoch_blocks"]
    assert blocks * fast.target_block_time + params["timelock_delay_seconds"] <= 60
    # production timing stays the devnet's: MigrationParams' defaults (64-block vote, 60 s)
    dev_params = json.loads((dev.genesis_contracts or Path()).read_text())["params"]
    assert dev_params["epoch_blocks"] == dev.quiz.epoch_blocks == 32
    assert "voting_period_blocks" not in dev_params and "timelock_delay_seconds" not in dev_params


def test_quality_gate_parameters_are_exact() -> None:
    from fractions import Fraction

    assert load_genesis_config().quality_gate.min_delta == Fraction(4, 1000)
    assert load_genesis_config("devnet-fast").quality_gate.min_delta == Fraction(1, 1000)
    data = _base()
    data.pop("qualityGate")  # absent: the default
    assert parse_genesis_config(data, ASSETS).quality_gate.min_delta == Fraction(4, 1000)
