"""Numbered deployment steps for the PoAI contracts, run with web3.

`run_migrations(w3, deployer_key, params, deployments_path)` runs every `NNN_*.py` step in this
directory in order; each step's addresses are recorded in the deployments file
(`migrations/deployments/<chainId>.json` by default) and a step already recorded there is
skipped, so re-running is safe. The genesis builder runs the same steps on an in-memory chain
(`migrations/genesis.py`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the NNN_ steps import this module as `runner`
sys.path.insert(0, str(HERE.parent / "bindings" / "python"))
import poai_bindings as B  # noqa: E402

log = logging.getLogger(__name__)

ETHER = 10**18


class MigrationError(RuntimeError):
    """A deployment transaction failed or the deployments file does not fit this chain."""


@dataclass(frozen=True)
class MigrationParams:
    """Everything the contracts are constructed with. Defaults are the devnet's."""

    epoch_blocks: int = 32
    unbonding_blocks: int = 2_048
    voting_delay_blocks: int = 1
    voting_period_blocks: int = 64
    proposal_threshold: int = 0
    quorum_percent: int = 4
    timelock_delay_seconds: int = 60
    layers: int = 4
    experts_per_layer: int = 8
    genesis_trunk_hash: bytes = b"\x01" * 32
    genesis_expert_hashes: tuple[bytes, ...] = field(
        default_factory=lambda: tuple(bytes([2, i]) + b"\x00" * 30 for i in range(32))
    )
    genesis_expert_sizes: tuple[int, ...] = field(default_factory=lambda: (1,) * 32)
    genesis_dataset_hash: bytes = b"\x03" * 32
    genesis_dataset_records: int = 1
    genesis_dataset_key: bytes = b"\x04" * 32
    min_worker_stake: int = 100 * ETHER
    challenge_bond: int = 10 * ETHER
    challenge_window_blocks: int = 64
    royalty_bps: int = 1_000
    max_job_blocks: int = 512

    def validate(self) -> None:
        slots = self.layers * self.experts_per_layer
        if len(self.genesis_expert_hashes) != slots or len(self.genesis_expert_sizes) != slots:
            raise ValueError(
                f"genesis model needs {slots} expert hashes and sizes "
                f"(got {len(self.genesis_expert_hashes)}, {len(self.genesis_expert_sizes)})"
            )
        for name in ("genesis_trunk_hash", "genesis_dataset_hash", "genesis_dataset_key"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"{name} must be 32 bytes")
        if any(len(h) != 32 for h in self.genesis_expert_hashes):
            raise ValueError("genesis expert hashes must be 32 bytes each")
        if self.epoch_blocks <= 0:
            raise ValueError("epoch_blocks must be positive")


@dataclass
class MigrationContext:
    w3: Web3
    account: LocalAccount
    params: MigrationParams
    addresses: dict[str, str]  # contract name -> address, from earlier steps

    def send(self, data: dict[str, Any]) -> Any:
        """Signs and sends a deployer transaction; returns the receipt, raises on revert."""
        tx = {
            "from": self.account.address,
            "nonce": self.w3.eth.get_transaction_count(self.account.address),
            "chainId": self.w3.eth.chain_id,
            "gasPrice": self.w3.eth.gas_price,
            **data,
        }
        tx.setdefault("value", 0)
        if "gas" not in tx:
            tx["gas"] = int(self.w3.eth.estimate_gas(tx) * 1.2)
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise MigrationError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def deploy(self, binding: type[B._Binding], *args: Any) -> str:
        receipt = self.send(binding.deploy_transaction(self.w3, *args))
        address = str(receipt["contractAddress"])
        log.info("deployed %s at %s", binding.NAME, address)
        self.addresses[binding.NAME] = address
        return address

    def call(self, fn: Any) -> Any:
        """Sends a bound contract function (from poai_bindings) as a transaction."""
        return self.send({"to": fn.address, "data": fn._encode_transaction_data()})


Step = Callable[[MigrationContext], dict[str, str]]


def discover_steps() -> list[tuple[str, Step]]:
    steps = []
    for path in sorted(HERE.glob("[0-9][0-9][0-9]_*.py")):
        spec = importlib.util.spec_from_file_location(f"poai_migration_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        steps.append((path.stem, module.run))
    return steps


def default_deployments_path(chain_id: int) -> Path:
    return HERE / "deployments" / f"{chain_id}.json"


def run_migrations(
    w3: Web3,
    deployer_key: str | bytes,
    params: MigrationParams | None = None,
    deployments_path: Path | None = None,
) -> dict[str, str]:
    """Runs the steps not yet recorded; returns every contract address by name."""
    params = params or MigrationParams()
    params.validate()
    chain_id = w3.eth.chain_id
    path = deployments_path or default_deployments_path(chain_id)
    record: dict[str, Any] = {"chainId": chain_id, "steps": {}, "contracts": {}}
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("chainId") != chain_id:
            raise MigrationError(f"{path} is for chain {record.get('chainId')}, not {chain_id}")
    ctx = MigrationContext(w3, Account.from_key(deployer_key), params, dict(record["contracts"]))
    for name, step in discover_steps():
        if name in record["steps"]:
            log.info("skip %s (done)", name)
            continue
        for contract, address in record["steps"].get(name, {}).items():
            ctx.addresses[contract] = address
        produced = step(ctx)
        record["steps"][name] = produced
        record["contracts"].update(produced)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return dict(record["contracts"])
