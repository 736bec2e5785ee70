"""The QuizContext of the committed genesis model and dataset (node/poai/assets/).

Used by the golden-vector tests and the benchmarks; the node builds its contexts from the chain
config (which names the same manifest and dataset for the genesis epochs).
"""

from __future__ import annotations

import json

from poai.model.genesis import (
    ASSETS_DIR,
    GENESIS_DATASET_INFO,
    GENESIS_MANIFEST_FILE,
    GENESIS_MODEL_DIR,
    genesis_dataset_info,
    genesis_manifest_hash,
)
from poai.quiz.context import QuizContext
from poai.quiz.params import QuizParams


def genesis_context(epoch_key: bytes, params: QuizParams | None = None) -> QuizContext:
    """A context over the genesis assets (raises FileNotFoundError if they are not built)."""
    info = genesis_dataset_info()
    p = params or devnet_params()
    return QuizContext(
        params=p,
        epoch_key=epoch_key,
        manifest_hash=genesis_manifest_hash(),
        blob_dir=str(GENESIS_MODEL_DIR),
        dataset_path=str(info["path"]),
        dataset_key=bytes.fromhex(str(info["key"])),
    )


def devnet_params() -> QuizParams:
    """The quiz parameters of the devnet genesis config (assets/devnet.json)."""

    config = json.loads((ASSETS_DIR / "devnet.json").read_text())
    return QuizParams.from_dict(config["quiz"])


def devnet_difficulty() -> int:
    """The devnet genesis difficulty (assets/devnet.json "initialDifficulty")."""

    config = json.loads((ASSETS_DIR / "devnet.json").read_text())
    return int(config["initialDifficulty"])


def genesis_available() -> bool:

    return GENESIS_MANIFEST_FILE.is_file() and GENESIS_DATASET_INFO.is_file()
