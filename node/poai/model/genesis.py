"""The genesis model and dataset: where they live, and how they are (re)built.

The committed blobs are the source of truth: rebuilding trains a new model (random init and
float summation order are not reproducible across library versions or CPUs), which gives a new
manifest hash that every node's genesis config would then have to name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import transformers

from poai.model.config import GENESIS_SPEC, ModelSpec, build_model, set_consensus_threads
from poai.model.corpus import CorpusSplits, build_splits
from poai.model.dataset import build_dataset
from poai.model.snapshot import read_manifest, save_model
from poai.model.store import BlobStore
from poai.model.train import TrainSettings, byte_tensor, eval_windows, evaluate_loss, train

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
GENESIS_MODEL_DIR = ASSETS_DIR / "model"
GENESIS_MANIFEST_FILE = GENESIS_MODEL_DIR / "MANIFEST"
GENESIS_TRAINING_FILE = GENESIS_MODEL_DIR / "TRAINING.json"
GENESIS_DATASET_DIR = ASSETS_DIR / "dataset"
GENESIS_DATASET_PATH = GENESIS_DATASET_DIR / "genesis.poaids"
GENESIS_DATASET_INFO = GENESIS_DATASET_DIR / "GENESIS.json"
CORPUS_DIR = ASSETS_DIR / "corpus"
VALIDATION_TEXT = CORPUS_DIR / "validation.txt"

# Public by design: the genesis dataset has no commit-reveal phase.
GENESIS_DATASET_KEY = hashlib.sha256(b"PoAI genesis dataset key v1").digest()
GENESIS_SAMPLE_LEN = 64
GENESIS_TRAIN = TrainSettings(steps=800, batch_size=16, seq_len=64, lr=3e-3, seed=0)
EVAL_WINDOWS = 1024


def genesis_manifest_hash() -> str:
    """The manifest hash of the committed genesis model (``assets/model/MANIFEST``)."""
    return GENESIS_MANIFEST_FILE.read_text().strip()


def genesis_store() -> BlobStore:
    return BlobStore(GENESIS_MODEL_DIR)


def genesis_dataset_info() -> dict[str, Any]:
    """``{"path", "key", "sha256", "records", "sample_len"}`` of the committed genesis dataset."""
    info: dict[str, Any] = json.loads(GENESIS_DATASET_INFO.read_text())
    info["path"] = str(GENESIS_DATASET_PATH)
    return info


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_genesis_model(splits: CorpusSplits, out_dir: Path, settings: TrainSettings,
                        spec: ModelSpec = GENESIS_SPEC) -> dict[str, Any]:
    """Train a model on ``splits.train`` and write its blobs + manifest into ``out_dir``."""
    set_consensus_threads()
    torch.manual_seed(settings.seed)
    model = build_model(spec)
    windows = eval_windows(byte_tensor(splits.validation), settings.seq_len, EVAL_WINDOWS)
    before = evaluate_loss(model, windows)
    log.info("validation loss before training: %.4f nats/byte", before)
    t0 = time.perf_counter()

    def progress(step: int, loss: float, secs: float) -> None:
        print(f"step {step:5d}/{settings.steps}  train loss {loss:.4f}  {secs:7.1f}s", flush=True)

    losses = train(model, byte_tensor(splits.train), settings, progress=progress)
    seconds = time.perf_counter() - t0
    after = evaluate_loss(model, windows)
    log.info("validation loss after training: %.4f nats/byte", after)

    store = BlobStore(out_dir)
    manifest_hash = save_model(store, model)
    keep = {manifest_hash, *read_manifest(store, manifest_hash).blob_hashes()}
    for digest in store.digests():
        if digest not in keep:
            store.path(digest).unlink()
    (out_dir / "MANIFEST").write_text(manifest_hash + "\n")
    record = {
        "manifest": manifest_hash,
        "spec": spec.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": asdict(settings),
        "train_seconds": round(seconds, 1),
        "final_train_loss": round(sum(losses[-20:]) / min(20, len(losses)), 4),
        "validation_loss_before": round(before, 4),
        "validation_loss_after": round(after, 4),
        "validation_windows": int(windows.shape[0]),
        "corpus": {k: {"bytes": len(getattr(splits, k).encode()),
                       "sha256": _sha(getattr(splits, k))}
                   for k in ("train", "validation", "quiz")},
        "built_with": {"python": sys.version.split()[0], "torch": torch.__version__,
                       "transformers": transformers.__version__, "machine": platform.machine()},
    }
    (out_dir / "TRAINING.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def build_genesis_dataset(quiz_text: str, out_path: Path, info_path: Path,
                          key: bytes = GENESIS_DATASET_KEY,
                          sample_len: int = GENESIS_SAMPLE_LEN) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as f:
        f.write(quiz_text.encode("utf-8"))
        f.flush()
        digest = build_dataset(f.name, out_path, key, sample_len)
    info = {"key": key.hex(), "sha256": digest, "sample_len": sample_len,
            "records": len(quiz_text.encode("utf-8")) // sample_len,
            "source": "quiz split of the stdlib-docstring corpus (poai.model.corpus)"}
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def build_genesis(assets_dir: Path = ASSETS_DIR,
                  settings: TrainSettings = GENESIS_TRAIN) -> dict[str, Any]:
    """Corpus -> genesis model blobs + MANIFEST, genesis dataset + GENESIS.json, validation text."""
    splits = build_splits()
    corpus_dir = assets_dir / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    (corpus_dir / "validation.txt").write_text(splits.validation, encoding="utf-8")
    dataset_dir = assets_dir / "dataset"
    dataset_dir.mkdir(parents=True, exist_ok=True)
    dataset = build_genesis_dataset(splits.quiz, dataset_dir / "genesis.poaids",
                                    dataset_dir / "GENESIS.json")
    model = build_genesis_model(splits, assets_dir / "model", settings)
    return {"model": model, "dataset": dataset}
