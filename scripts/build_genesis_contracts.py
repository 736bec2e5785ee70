"""Build node/poai/assets/genesis_contracts.json: the governance contracts' genesis accounts.

Usage: ETH_HASH_BACKEND=pysha3 .venv/bin/python scripts/build_genesis_contracts.py [--check]

Runs migrations/genesis.py (the migrations on an in-memory eth-tester chain) with the devnet
parameters: epoch length from node/poai/assets/devnet.json, the genesis model (trunk and
per-slot expert blob hashes and sizes, from node/poai/assets/model/MANIFEST and its manifest) as
ModelRegistry's snapshot 1, and the genesis dataset (node/poai/assets/dataset/GENESIS.json) as
DatasetDAO's dataset 1 — both active from epoch 0, as the constructors register them. The output
is committed so the node never needs eth-tester (or solc) at run time; `--check` exits 1 when the
committed file differs from a fresh build (tests/governance/test_genesis_contracts.py does the
same). Output is deterministic: same inputs, same bytes.

`--param NAME=VALUE` (repeatable, integers) overrides a MigrationParams field for a variant
asset written with `--out` (e.g. a test chain with short governance periods: voting_period_blocks,
voting_delay_blocks, timelock_delay_seconds, epoch_blocks, ...); a genesis config names such a
file with "genesisContracts", and its quiz epoch_blocks must equal the asset's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "node" / "poai" / "assets"
OUTPUT = ASSETS / "genesis_contracts.json"
ABI_DIR = ROOT / "bindings" / "abi"
# The contracts the node reads at epoch boundaries and `poai gov` drives: their ABIs ship inside
# the asset so the installed package does not depend on the repository layout.
READ_ABIS = ("ModelRegistry", "DatasetDAO", "PoAIGovernor", "StakedPOAI", "PoAITimelock",
             "InferenceMarket")
# The fast dev chain (assets/devnet-fast.json, `poai node --dev --genesis devnet-fast`): 8-block
# epochs, a 30-block vote (time to vote by hand) and a 5 s timelock, so propose -> active takes
# about a minute at one block a second; a 12-block market challenge window (a job is paid about
# 15 s after its answer). Production timing stays the MigrationParams defaults (devnet.json).
FAST_OUTPUT = ASSETS / "genesis_contracts_fast.json"
FAST_OVERRIDES = {"epoch_blocks": 8, "voting_delay_blocks": 1, "voting_period_blocks": 30,
                  "timelock_delay_seconds": 5, "challenge_window_blocks": 12}


class GenesisInputError(ValueError):
    """A genesis asset the contracts are built from is missing or malformed."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise GenesisInputError(f"{path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise GenesisInputError(f"{path} is not valid JSON: {exc}") from exc


def _hash32(value: Any, what: str) -> bytes:
    text = str(value).removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise GenesisInputError(f"{what}: not hex: {value!r}") from exc
    if len(raw) != 32:
        raise GenesisInputError(f"{what}: expected 32 bytes, got {len(raw)}")
    return raw


def devnet_params(assets: Path = ASSETS) -> dict[str, Any]:
    """MigrationParams fields (as a dict) for the devnet: epoch length, genesis model, dataset."""
    devnet = _read_json(assets / "devnet.json")
    model_dir = assets / str(devnet.get("modelDir", "model"))
    manifest_hash = (model_dir / "MANIFEST").read_text().strip()
    if devnet.get("modelManifest") not in (None, manifest_hash):
        raise GenesisInputError(
            f"devnet.json modelManifest {devnet['modelManifest']} != {model_dir}/MANIFEST "
            f"{manifest_hash}"
        )
    manifest = _read_json(model_dir / manifest_hash)
    experts: list[list[str]] = manifest["experts"]
    layers = len(experts)
    per_layer = len(experts[0]) if layers else 0
    if layers == 0 or any(len(row) != per_layer for row in experts):
        raise GenesisInputError(f"manifest {manifest_hash}: experts are not a layers x E grid")
    slot_hashes = [h for row in experts for h in row]  # slot l*E + i, as ModelRegistry wants
    sizes = []
    for h in slot_hashes:
        blob = model_dir / h
        if not blob.is_file():
            raise GenesisInputError(f"genesis expert blob {h} missing from {model_dir}")
        sizes.append(blob.stat().st_size)
    dataset = _read_json(assets / "dataset" / "GENESIS.json")
    quiz = devnet.get("quiz", {})
    if "epoch_blocks" not in quiz:
        raise GenesisInputError("devnet.json: quiz.epoch_blocks missing")
    ds_cfg = devnet.get("dataset", {})
    if ds_cfg.get("sha256") not in (None, dataset["sha256"]):
        raise GenesisInputError("devnet.json dataset.sha256 differs from dataset/GENESIS.json")
    return {
        "epoch_blocks": int(quiz["epoch_blocks"]),
        "layers": layers,
        "experts_per_layer": per_layer,
        "genesis_trunk_hash": "0x" + _hash32(manifest["trunk"], "manifest trunk").hex(),
        "genesis_expert_hashes": ["0x" + _hash32(h, "expert hash").hex() for h in slot_hashes],
        "genesis_expert_sizes": sizes,
        "genesis_dataset_hash": "0x" + _hash32(dataset["sha256"], "dataset sha256").hex(),
        "genesis_dataset_records": int(dataset["records"]),
        "genesis_dataset_key": "0x" + _hash32(dataset["key"], "dataset key").hex(),
    }


def build(assets: Path = ASSETS, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The asset document: contracts (name -> address), alloc, the read ABIs, the params used.
    `overrides`: MigrationParams fields replacing the devnet values (a variant asset)."""
    sys.path.insert(0, str(ROOT / "migrations"))
    import genesis  # migrations/genesis.py (a script directory, not a package)

    params = {**devnet_params(assets), **(overrides or {})}
    alloc, contracts = genesis.genesis_state(params)
    abis = {name: _read_json(ABI_DIR / f"{name}.json")["abi"] for name in READ_ABIS}
    return {
        "_comment": "Generated by scripts/build_genesis_contracts.py from migrations/ and the "
        "genesis model/dataset assets; do not edit. Merge 'alloc' into the genesis alloc.",
        "params": params,
        "contracts": dict(sorted(contracts.items())),
        "alloc": alloc,
        "abi": abis,
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    ap.add_argument("--out", type=Path, default=OUTPUT)
    ap.add_argument("--fast", action="store_true",
                    help=f"the fast dev chain's asset ({FAST_OUTPUT.name})")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override an integer MigrationParams field (variant assets only)")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            ap.error(f"--param expects NAME=INTEGER, got {item!r}")
        overrides[name.strip()] = int(value)
    if args.fast:
        overrides = {**FAST_OVERRIDES, **overrides}
        args.out = FAST_OUTPUT if args.out == OUTPUT else args.out
    if overrides and args.out == OUTPUT:
        ap.error("--param builds a variant: give it its own --out")
    text = render(build(overrides=overrides) if overrides else build())
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run scripts/build_genesis_contracts.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
