"""poai.governance.epoch_context: governance readings on py-evm state -> an epoch's quiz assets
(genesis, a snapshot and a dataset scheduled through the timelock, the unrevealed-dataset rule,
missing blobs and dataset files)."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from poai.chain.config import load_genesis_config
from poai.governance.epoch_context import (
    EpochAssetResolver,
    EpochAssets,
    GenesisAssets,
    GovernanceError,
    MissingBlobs,
    MissingDataset,
)
from poai.model.genesis import GENESIS_MODEL_DIR, genesis_dataset_info, genesis_manifest_hash
from poai.model.snapshot import assemble_model, read_manifest
from poai.model.store import BlobStore
from poai.quiz.context import QuizContext, losses_for
from poai.quiz.epoch import epoch_key


@pytest.fixture(scope="module")
def genesis() -> GenesisAssets:
    return GenesisAssets.from_chain_config(load_genesis_config())


def _resolver(contracts: Any, genesis: GenesisAssets, tmp: Path) -> EpochAssetResolver:
    return EpochAssetResolver(contracts, genesis, tmp / "blobs", tmp / "datasets")


def test_genesis_epochs_use_the_genesis_assets(
    bench: Any, genesis: GenesisAssets, tmp_path: Path
) -> None:
    r = _resolver(bench.contracts, genesis, tmp_path)
    bench.mine_to(31)  # the seed block of epoch 1
    seed = bench.seed_state(32)
    info = genesis_dataset_info()
    for epoch in (0, 1):
        a = r.resolve(epoch, seed)
        assert a == EpochAssets(
            manifest_hash=genesis_manifest_hash(),
            blob_dir=str(GENESIS_MODEL_DIR),
            dataset_path=info["path"],
            dataset_key=bytes.fromhex(info["key"]),
            snapshot_id=1,
            dataset_id=1,
            dataset_epoch=epoch,
        )
    assert not (tmp_path / "blobs").exists()  # nothing copied for the genesis model
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        r.resolve(-1, seed)


def test_genesis_snapshot_that_does_not_match_the_config_is_an_error(
    bench: Any, genesis: GenesisAssets, tmp_path: Path
) -> None:
    # Same model directory, but the config names another manifest (a stale genesis asset).
    other = BlobStore(tmp_path / "other")
    m = read_manifest(BlobStore(GENESIS_MODEL_DIR), genesis_manifest_hash())
    changed = type(m)(m.spec, m.experts[0][0], m.experts)  # any other valid manifest
    digest = other.put(changed.to_bytes())
    wrong = GenesisAssets(digest, other.root, genesis.dataset_path, genesis.dataset_sha256,
                          genesis.dataset_key)
    r = _resolver(bench.contracts, wrong, tmp_path)
    with pytest.raises(GovernanceError, match="genesis snapshot rebuilds to manifest"):
        r.resolve(0, bench.seed_state(32))


def test_new_snapshot_needs_its_blobs_then_becomes_a_loadable_manifest(
    flow: Any, genesis: GenesisAssets, tmp_path: Path
) -> None:
    b, e = flow.bench, flow.activation_epoch
    r = _resolver(b.contracts, genesis, tmp_path)
    new_blob = hashlib.sha256(flow.new_expert_blob).hexdigest()
    with pytest.raises(MissingBlobs) as err:
        r.resolve(e, b.seed_state(flow.epoch_blocks))
    assert err.value.digests == [new_blob] and err.value.snapshot_id == flow.snapshot_id
    BlobStore(tmp_path / "blobs").put(flow.new_expert_blob)  # as P2P would after a fetch

    a = r.resolve(e, b.seed_state(flow.epoch_blocks))
    assert a.snapshot_id == flow.snapshot_id and a.blob_dir == str(tmp_path / "blobs")
    store = BlobStore(a.blob_dir)
    manifest = read_manifest(store, a.manifest_hash)
    assert manifest.trunk == flow.trunk.hex()
    assert manifest.experts[0][0] == new_blob
    assert manifest.experts[1:] == read_manifest(
        BlobStore(GENESIS_MODEL_DIR), genesis_manifest_hash()).experts[1:]
    assert all(store.has(h) for h in manifest.blob_hashes())
    model = assemble_model(store, a.manifest_hash)  # every blob hash-checked and shape-checked
    assert model.config.num_hidden_layers == manifest.spec.num_hidden_layers
    # The epoch before still runs the genesis model, from the same seed state.
    before = r.resolve(e - 1, b.seed_state(flow.epoch_blocks))
    assert (before.manifest_hash, before.snapshot_id) == (genesis_manifest_hash(), 1)


def test_unrevealed_dataset_keeps_the_previous_epochs(
    flow: Any, genesis: GenesisAssets, tmp_path: Path
) -> None:
    b, e = flow.bench, flow.activation_epoch
    BlobStore(tmp_path / "blobs").put(flow.new_expert_blob)
    r = _resolver(b.contracts, genesis, tmp_path)
    asked: list[int] = []

    def seed(k: int) -> Any:
        asked.append(k)
        return b.seed_state(flow.epoch_blocks)(k)

    a = r.resolve(e, seed)  # dataset 2 is active at E but its key is revealed only during E
    assert (a.dataset_id, a.dataset_epoch) == (1, e - 1)
    assert a.dataset_path == str(genesis.dataset_path) and a.dataset_key == genesis.dataset_key
    assert a.snapshot_id == flow.snapshot_id  # the model changes on time
    assert asked == [e, e - 1]

    # A node that already resolved epoch E-1 on this branch is not sent further back.
    earlier = EpochAssets("00" * 32, "x", "/prev.poaids", b"\x07" * 32, 1, 9, e - 1)
    asked.clear()
    a2 = r.resolve(e, seed, known=lambda k: earlier if k == e - 1 else None)
    assert (a2.dataset_path, a2.dataset_key, a2.dataset_id) == ("/prev.poaids", b"\x07" * 32, 9)
    assert asked == [e]


def test_revealed_dataset_is_used_from_the_next_seed_on(
    flow: Any, genesis: GenesisAssets, tmp_path: Path
) -> None:
    b, e, eb = flow.bench, flow.activation_epoch, flow.epoch_blocks
    BlobStore(tmp_path / "blobs").put(flow.new_expert_blob)
    r = _resolver(b.contracts, genesis, tmp_path)
    target = tmp_path / "datasets" / f"{flow.dataset_sha256.hex()}.poaids"
    with pytest.raises(MissingDataset) as err:
        r.resolve(e + 1, b.seed_state(eb))
    assert err.value.path == target

    target.parent.mkdir()
    target.write_bytes(b"not the dataset")
    with pytest.raises(GovernanceError, match="dataset 2"):
        r.resolve(e + 1, b.seed_state(eb))

    shutil.copy(flow.dataset_file, target)
    a = r.resolve(e + 1, b.seed_state(eb))
    assert (a.dataset_id, a.dataset_epoch, a.snapshot_id) == (2, e + 1, flow.snapshot_id)
    assert a.dataset_path == str(target) and a.dataset_key == flow.dataset_key

    # The assets make a working QuizContext: one attempt on the new model and dataset.
    seed_hash = b.backend.chain.get_canonical_block_header_by_number((e + 1) * eb - 1).hash
    ctx = QuizContext(
        params=load_genesis_config().quiz, epoch_key=epoch_key(seed_hash, e + 1),
        manifest_hash=a.manifest_hash, blob_dir=a.blob_dir, dataset_path=a.dataset_path,
        dataset_key=a.dataset_key,
    )
    losses = losses_for(ctx, b"\x01" * 32, 0)
    assert len(losses) == ctx.params.values and all(math.isfinite(v) and v > 0 for v in losses)
