"""The committed genesis assets load, match their hashes, and are what the script recorded."""

from __future__ import annotations

import json
import re

import pytest
from poai.model.config import GENESIS_SPEC, check_consensus_mode
from poai.model.corpus import build_splits
from poai.model.dataset import EncryptedDataset
from poai.model.genesis import (
    GENESIS_DATASET_KEY,
    GENESIS_DATASET_PATH,
    GENESIS_TRAINING_FILE,
    VALIDATION_TEXT,
    genesis_dataset_info,
    genesis_manifest_hash,
    genesis_store,
)
from poai.model.snapshot import load_model, read_manifest
from poai.model.train import byte_tensor, eval_windows, evaluate_loss


def test_manifest_file_names_a_complete_verified_store() -> None:
    h = genesis_manifest_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    store = genesis_store()
    manifest = read_manifest(store, h)
    assert manifest.spec == GENESIS_SPEC
    for digest in manifest.blob_hashes():
        store.get(digest)  # re-hashes every blob
    assert set(store.digests()) == {h, *manifest.blob_hashes()}  # nothing stale committed
    sizes = [store.size(d) for d in manifest.blob_hashes()]
    assert sum(sizes) <= 8_000_000


def test_genesis_model_reproduces_recorded_validation_loss() -> None:
    record = json.loads(GENESIS_TRAINING_FILE.read_text())
    assert record["manifest"] == genesis_manifest_hash()
    assert record["validation_loss_after"] < record["validation_loss_before"] - 2.0
    model = load_model(genesis_store(), genesis_manifest_hash())
    check_consensus_mode(model)
    windows = eval_windows(byte_tensor(VALIDATION_TEXT.read_bytes()), 64,
                           record["validation_windows"])
    assert evaluate_loss(model, windows) == pytest.approx(record["validation_loss_after"],
                                                          abs=1e-3)


def test_genesis_dataset_matches_its_record() -> None:
    info = genesis_dataset_info()
    assert bytes.fromhex(info["key"]) == GENESIS_DATASET_KEY
    assert GENESIS_DATASET_PATH.stat().st_size <= 1_000_000
    with EncryptedDataset.open(info["path"], GENESIS_DATASET_KEY,
                               expected_sha256=info["sha256"]) as ds:
        assert len(ds) == info["records"] >= 2000
        assert ds.sample_len == info["sample_len"] == 64
        for i in (0, len(ds) // 2, len(ds) - 1):
            tokens = ds.record_tokens(i)
            assert len(tokens) == 64 and all(0 <= t < 256 for t in tokens)


def test_genesis_assets_come_from_the_recorded_corpus_splits() -> None:
    record = json.loads(GENESIS_TRAINING_FILE.read_text())
    splits = build_splits()
    from hashlib import sha256

    if sha256(splits.quiz.encode()).hexdigest() != record["corpus"]["quiz"]["sha256"]:
        pytest.skip("this Python's stdlib differs from the one the genesis corpus came from")
    assert VALIDATION_TEXT.read_text(encoding="utf-8") == splits.validation
    quiz = splits.quiz.encode()
    with EncryptedDataset.open(GENESIS_DATASET_PATH, GENESIS_DATASET_KEY) as ds:
        for i in (0, 1, len(ds) - 1):
            assert bytes(ds.record_tokens(i)) == quiz[i * 64 : (i + 1) * 64]
    # the quiz text is never training text
    train = splits.train.encode()
    assert quiz[:64] not in train and quiz[-64:] not in train
