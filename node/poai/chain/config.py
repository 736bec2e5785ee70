"""The chain's genesis configuration (`assets/devnet.json` and friends) as a typed object.

Everything consensus depends on lives here: chain id, quiz parameters, the genesis model and
dataset, difficulty settings, block subsidy and halving, gas limit, genesis allocations.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from poai.governance.contracts import (
    GenesisContracts,
    GenesisContractsError,
    parse_genesis_contracts,
)
from poai.quiz.params import QuizParams

ETHER = 10**18
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "assets" / "devnet.json"
# The governance contracts' genesis accounts (scripts/build_genesis_contracts.py).  A config
# names its own with "genesisContracts" (a path, or null for a chain without governance).
DEFAULT_GENESIS_CONTRACTS = DEFAULT_CONFIG.parent / "genesis_contracts.json"


class ConfigError(ValueError):
    """The genesis config is missing a field or has a bad value; the message names it."""


# The subsidy halves every 4 years (Julian years of 365.25 days) of blocks at the target block
# time; a config may still name "halvingBlocks" itself (test chains).
HALVING_PERIOD_SECONDS = 4 * 36525 * 86400 // 100


def halving_blocks_for(target_block_time: int) -> int:
    """Blocks in 4 years at one block every ``target_block_time`` seconds."""
    if target_block_time < 1:
        raise ConfigError("targetBlockTime must be >= 1 second")
    return max(1, HALVING_PERIOD_SECONDS // target_block_time)


@dataclass(frozen=True)
class DatasetConfig:
    path: Path  # encrypted dataset file
    sha256: str  # hex sha256 of the file
    key: bytes  # 32-byte dataset key (public for the genesis dataset)


# ModelRegistry.GATE_WINDOWS: a claim carries this many windows' values of each model.
DEFAULT_GATE_WINDOWS = 256


@dataclass(frozen=True)
class QualityGateConfig:
    """The quality gate's chain parameters (`"qualityGate"` in the genesis config): a snapshot
    activates only if its claimed improvement on the public validation windows is at least
    `min_delta` nats/byte (an exact decimal) and its claim holds (poai.quiz.gate)."""

    min_delta: Fraction = Fraction(1, 250)
    windows: int = DEFAULT_GATE_WINDOWS

    def __post_init__(self) -> None:
        if not isinstance(self.min_delta, Fraction) or self.min_delta < 0:
            raise ConfigError("qualityGate.minDelta must be a non-negative decimal")
        if self.windows != DEFAULT_GATE_WINDOWS:
            raise ConfigError(f"qualityGate.windows must be {DEFAULT_GATE_WINDOWS} "
                              "(ModelRegistry.GATE_WINDOWS)")


@dataclass(frozen=True)
class AccountAlloc:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainConfig:
    chain_id: int
    quiz: QuizParams
    model_manifest: str  # hex sha256 of the genesis model manifest
    model_dir: Path  # blob store holding the manifest and its blobs
    dataset: DatasetConfig
    initial_difficulty: int
    min_difficulty: int
    target_block_time: int  # seconds
    block_subsidy_wei: int
    halving_blocks: int
    gas_limit: int
    alloc: dict[bytes, AccountAlloc]
    genesis_timestamp: int = 0
    genesis_base_fee: int = 10**9
    extra_data: bytes = b""
    dev_mnemonic: str | None = None
    dev_accounts: int = 0
    max_future_drift: int = 15  # seconds a header may be ahead of our clock (geth: 15 s)
    # Governance contracts placed in genesis (ModelRegistry, DatasetDAO, ... at fixed
    # addresses); None: no contracts, every epoch's quiz uses the genesis model and dataset.
    genesis_contracts: Path | None = DEFAULT_GENESIS_CONTRACTS
    quality_gate: QualityGateConfig = field(default_factory=QualityGateConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.chain_id < 2**63:
            raise ConfigError(f"chainId {self.chain_id} out of range")
        if self.min_difficulty < 1 or self.initial_difficulty < self.min_difficulty:
            raise ConfigError("need 1 <= minDifficulty <= initialDifficulty")
        if self.target_block_time < 1:
            raise ConfigError("targetBlockTime must be >= 1 second")
        if self.halving_blocks < 1:
            raise ConfigError("halvingBlocks must be >= 1")
        if self.block_subsidy_wei < 0:
            raise ConfigError("blockSubsidy must be >= 0")
        if self.gas_limit < 5000:
            raise ConfigError("gasLimit must be >= 5000")
        if len(self.extra_data) > 32:
            raise ConfigError("extraData is limited to 32 bytes")


def _req(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: missing field {key!r}")
    return data[key]


def _int(value: Any, name: str) -> int:
    """Accepts JSON ints, decimal strings and 0x-hex strings (big wei amounts)."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            pass
    raise ConfigError(f"{name}: expected an integer, got {value!r}")


def _hex_bytes(value: Any, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a hex string, got {value!r}")
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: not hex: {value!r}") from exc
    if length is not None and len(raw) != length:
        raise ConfigError(f"{name}: expected {length} bytes, got {len(raw)}")
    return raw


def parse_alloc(data: dict[str, Any]) -> dict[bytes, AccountAlloc]:
    """A geth-style alloc object ({"0x..": {balance, nonce, code, storage}}) as AccountAllocs."""
    out: dict[bytes, AccountAlloc] = {}
    for addr, acct in data.items():
        where = f"alloc[{addr}]"
        if not isinstance(acct, dict):
            raise ConfigError(f"{where}: expected an object")
        address = _hex_bytes(addr, where, 20)
        storage = {
            _int(k, f"{where}.storage key"): _int(v, f"{where}.storage[{k}]")
            for k, v in acct.get("storage", {}).items()
        }
        out[address] = AccountAlloc(
            balance=_int(acct.get("balance", 0), f"{where}.balance"),
            nonce=_int(acct.get("nonce", 0), f"{where}.nonce"),
            code=_hex_bytes(acct.get("code", "0x"), f"{where}.code"),
            storage=storage,
        )
    return out


def parse_genesis_config(data: dict[str, Any], base_dir: Path) -> ChainConfig:
    """A ChainConfig from the JSON object; relative asset paths resolve against base_dir."""
    if not isinstance(data, dict):
        raise ConfigError("genesis config must be a JSON object")
    try:
        quiz = QuizParams.from_dict(_req(data, "quiz", "config"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"quiz: {exc}") from exc
    ds = _req(data, "dataset", "config")
    dataset = DatasetConfig(
        path=(base_dir / str(_req(ds, "path", "dataset"))).resolve(),
        sha256=str(_req(ds, "sha256", "dataset")),
        key=_hex_bytes(_req(ds, "key", "dataset"), "dataset.key", 32),
    )
    manifest = str(_req(data, "modelManifest", "config"))
    if len(manifest) != 64 or any(c not in "0123456789abcdef" for c in manifest):
        raise ConfigError("modelManifest must be 64 lowercase hex characters")
    config = ChainConfig(
        chain_id=_int(_req(data, "chainId", "config"), "chainId"),
        quiz=quiz,
        model_manifest=manifest,
        model_dir=(base_dir / str(data.get("modelDir", "model"))).resolve(),
        dataset=dataset,
        initial_difficulty=_int(_req(data, "initialDifficulty", "config"), "initialDifficulty"),
        min_difficulty=_int(_req(data, "minDifficulty", "config"), "minDifficulty"),
        target_block_time=_int(_req(data, "targetBlockTime", "config"), "targetBlockTime"),
        block_subsidy_wei=_int(_req(data, "blockSubsidy", "config"), "blockSubsidy"),
        halving_blocks=_halving_blocks(data),
        gas_limit=_int(_req(data, "gasLimit", "config"), "gasLimit"),
        alloc=parse_alloc(data.get("alloc", {})),
        genesis_timestamp=_int(data.get("timestamp", 0), "timestamp"),
        genesis_base_fee=_int(data.get("baseFeePerGas", 10**9), "baseFeePerGas"),
        extra_data=_hex_bytes(data.get("extraData", "0x"), "extraData"),
        dev_mnemonic=data.get("devMnemonic"),
        dev_accounts=_int(data.get("devAccounts", 0), "devAccounts"),
        max_future_drift=_int(data.get("maxFutureDrift", 15), "maxFutureDrift"),
        genesis_contracts=_contracts_path(data, base_dir),
        quality_gate=_quality_gate(data.get("qualityGate", {})),
    )
    config_contracts(config)  # a bad or mismatched contracts asset is a config error
    return config


def _halving_blocks(data: dict[str, Any]) -> int:
    if "halvingBlocks" in data:
        return _int(data["halvingBlocks"], "halvingBlocks")
    return halving_blocks_for(_int(_req(data, "targetBlockTime", "config"), "targetBlockTime"))


def _quality_gate(value: Any) -> QualityGateConfig:
    if not isinstance(value, dict):
        raise ConfigError("qualityGate: expected an object")
    unknown = set(value) - {"minDelta", "windows", "_comment"}
    if unknown:
        raise ConfigError(f"qualityGate: unknown field(s) {sorted(unknown)}")
    delta = value.get("minDelta", "0.004")
    if not isinstance(delta, str | int) or isinstance(delta, bool):
        raise ConfigError(f"qualityGate.minDelta: expected a decimal string, got {delta!r}")
    try:
        min_delta = Fraction(str(delta))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"qualityGate.minDelta: not a decimal: {delta!r}") from None
    return QualityGateConfig(min_delta=min_delta,
                             windows=_int(value.get("windows", DEFAULT_GATE_WINDOWS),
                                          "qualityGate.windows"))


def _contracts_path(data: dict[str, Any], base_dir: Path) -> Path | None:
    # Absent: the bundled asset, so a copy of devnet.json elsewhere keeps its contracts.
    if "genesisContracts" not in data:
        return DEFAULT_GENESIS_CONTRACTS
    value = data["genesisContracts"]
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"genesisContracts: expected a path or null, got {value!r}")
    return (base_dir / value).resolve()


# Bundled genesis configs a user may name instead of a path (`--genesis devnet-fast`).
BUNDLED_CONFIGS = ("devnet", "devnet-fast")


def resolve_genesis_path(path: str | Path | None) -> Path:
    """A genesis config file: ``path``, or the bundled config a missing path names."""
    if path is None:
        return DEFAULT_CONFIG
    p = Path(path)
    name = p.name.removesuffix(".json")
    if not p.exists() and name in BUNDLED_CONFIGS:
        return DEFAULT_CONFIG.parent / f"{name}.json"
    return p


def load_genesis_config(path: str | Path | None = None) -> ChainConfig:
    """Read a genesis config file (default: the bundled devnet.json; a bundled config's name,
    e.g. ``devnet-fast``, works as a path)."""
    p = resolve_genesis_path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"genesis config {p} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"genesis config {p} is not valid JSON: {exc}") from exc
    return parse_genesis_config(data, p.resolve().parent)


def dump_genesis_config(config: ChainConfig) -> dict[str, Any]:
    """The JSON object of `config` (absolute asset paths); parse_genesis_config reads it back."""
    return {
        "chainId": config.chain_id,
        "timestamp": config.genesis_timestamp,
        "extraData": "0x" + config.extra_data.hex(),
        "gasLimit": config.gas_limit,
        "baseFeePerGas": config.genesis_base_fee,
        "initialDifficulty": config.initial_difficulty,
        "minDifficulty": config.min_difficulty,
        "targetBlockTime": config.target_block_time,
        "maxFutureDrift": config.max_future_drift,
        "blockSubsidy": str(config.block_subsidy_wei),
        "halvingBlocks": config.halving_blocks,
        "quiz": config.quiz.to_dict(),
        "modelManifest": config.model_manifest,
        "modelDir": str(config.model_dir),
        "dataset": {
            "path": str(config.dataset.path),
            "sha256": config.dataset.sha256,
            "key": "0x" + config.dataset.key.hex(),
        },
        "devMnemonic": config.dev_mnemonic,
        "devAccounts": config.dev_accounts,
        "qualityGate": {"minDelta": _decimal(config.quality_gate.min_delta),
                        "windows": config.quality_gate.windows},
        "genesisContracts": (
            str(config.genesis_contracts) if config.genesis_contracts is not None else None
        ),
        "alloc": {
            "0x" + addr.hex(): {
                "balance": str(a.balance),
                "nonce": a.nonce,
                "code": "0x" + a.code.hex(),
                "storage": {hex(k): hex(v) for k, v in a.storage.items()},
            }
            for addr, a in config.alloc.items()
        },
    }


def _decimal(x: Fraction) -> str:
    """An exact decimal string of a Fraction with a terminating expansion."""
    whole, rest = divmod(x.numerator, x.denominator)
    digits = ""
    while rest and len(digits) < 40:
        rest *= 10
        d, rest = divmod(rest, x.denominator)
        digits += str(d)
    return f"{whole}.{digits}" if digits else str(whole)


@dataclass(frozen=True)
class ConfigContracts:
    """The genesis contracts a chain config names: addresses, alloc and build parameters."""

    path: Path
    contracts: GenesisContracts
    alloc: dict[bytes, AccountAlloc]
    params: dict[str, Any]  # MigrationParams fields the asset was built with

    @property
    def addresses(self) -> dict[str, bytes]:
        return dict(self.contracts.addresses)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> ConfigContracts:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
        contracts = parse_genesis_contracts(doc)
    except FileNotFoundError as exc:
        raise ConfigError(f"genesisContracts: {p} does not exist") from exc
    except (json.JSONDecodeError, GenesisContractsError) as exc:
        raise ConfigError(f"genesisContracts: {p}: {exc}") from exc
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"genesisContracts: {p}: 'params' is not an object")
    alloc = parse_alloc(contracts.alloc)
    return ConfigContracts(p, contracts, alloc, params)


def config_contracts(config: ChainConfig) -> ConfigContracts | None:
    """The genesis contracts of `config` (None when it has none), checked against the config:
    the contracts' epoch length must be the quiz's, and no dev account may sit on a contract."""
    if config.genesis_contracts is None:
        return None
    path = Path(config.genesis_contracts)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise ConfigError(f"genesisContracts: {path} does not exist") from exc
    cc = _load(str(path), mtime)
    epoch_blocks = cc.params.get("epoch_blocks")
    if epoch_blocks is not None and int(epoch_blocks) != config.quiz.epoch_blocks:
        raise ConfigError(
            f"genesisContracts: {path} was built for epochs of {epoch_blocks} blocks, the quiz "
            f"has {config.quiz.epoch_blocks}: rebuild it with the same epoch_blocks"
        )
    clash = sorted("0x" + a.hex() for a in set(cc.alloc) & set(config.alloc))
    if clash:
        raise ConfigError(f"alloc: {', '.join(clash)} collide with the genesis contracts")
    return cc
