from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from poai.model.config import ModelSpec, check_consensus_mode
from poai.model.snapshot import (
    Manifest,
    ManifestError,
    assemble_model,
    clear_cache,
    load_model,
    read_manifest,
    save_model,
)
from poai.model.store import BlobError, BlobStore, sha256_hex
from transformers import MixtralForCausalLM

Snapshot = tuple[BlobStore, str, MixtralForCausalLM]


def test_round_trip_is_bit_equal(tiny_snapshot: Snapshot) -> None:
    store, h, original = tiny_snapshot
    model = assemble_model(store, h)
    check_consensus_mode(model)
    a, b = original.state_dict(), model.state_dict()
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ids = torch.randint(0, 256, (4, 72), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(original(input_ids=ids).logits, model(input_ids=ids).logits)


def test_manifest_hash_is_deterministic(
    tmp_path: Path, tiny_snapshot: Snapshot, tiny_spec: ModelSpec,
) -> None:
    store, h, model = tiny_snapshot
    assert save_model(BlobStore(tmp_path / "other"), model) == h
    raw = store.get(h)
    assert sha256_hex(raw) == h
    m = Manifest.from_bytes(raw)
    assert m.to_bytes() == raw
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert m.spec == tiny_spec
    assert len(m.experts) == tiny_spec.num_hidden_layers
    assert all(len(row) == tiny_spec.num_local_experts for row in m.experts)
    assert len(set(m.blob_hashes())) == 1 + 2 * 4


def test_manifest_changes_with_one_expert(tiny_snapshot: Snapshot) -> None:
    store, h, model = tiny_snapshot
    with torch.no_grad():
        model.model.layers[1].mlp.experts.gate_up_proj[0, 0, 0] += 0.5
    h2 = save_model(store, model)
    m1, m2 = read_manifest(store, h), read_manifest(store, h2)
    assert h2 != h
    assert m1.trunk == m2.trunk
    diff = [(layer, e) for layer in range(2) for e in range(4)
            if m1.experts[layer][e] != m2.experts[layer][e]]
    assert diff == [(1, 0)]


def test_manifest_rejects_bad_input(tiny_snapshot: Snapshot) -> None:
    store, h, _ = tiny_snapshot
    raw = store.get(h)
    d = json.loads(raw)
    with pytest.raises(ManifestError, match="canonical"):
        Manifest.from_bytes(json.dumps(d, indent=1, sort_keys=True).encode())
    with pytest.raises(ManifestError, match="format"):
        Manifest.from_bytes(json.dumps({**d, "format": "x"}).encode())
    with pytest.raises(ManifestError, match="not JSON"):
        Manifest.from_bytes(b"\xff{")
    short = {**d, "experts": d["experts"][:1]}
    with pytest.raises(ManifestError, match="expert layers"):
        Manifest.from_bytes(json.dumps(short, sort_keys=True, separators=(",", ":")).encode())


def test_corrupted_expert_blob_is_never_used(
    tiny_snapshot: Snapshot, flip_byte: Callable[[Path, int], None],
) -> None:
    store, h, _ = tiny_snapshot
    bad = read_manifest(store, h).experts[1][2]
    flip_byte(store.path(bad), 200)
    clear_cache()
    with pytest.raises(BlobError, match=bad):
        load_model(store, h)


def test_missing_trunk_blob(tiny_snapshot: Snapshot) -> None:
    store, h, _ = tiny_snapshot
    trunk = read_manifest(store, h).trunk
    store.path(trunk).unlink()
    with pytest.raises(BlobError, match=f"{trunk}.*missing"):
        assemble_model(store, h)


def test_wrong_blob_in_a_slot_is_rejected(tiny_snapshot: Snapshot) -> None:
    store, h, _ = tiny_snapshot
    m = read_manifest(store, h)
    # a manifest that names the trunk blob as an expert: hash-valid, shape-invalid
    rows = [list(r) for r in m.experts]
    rows[0][0] = m.trunk
    forged = Manifest(m.spec, m.trunk, tuple(tuple(r) for r in rows))
    fh = store.put(forged.to_bytes())
    with pytest.raises(BlobError, match=m.trunk):
        assemble_model(store, fh)


def test_load_model_caches_by_manifest(tiny_snapshot: Snapshot) -> None:
    store, h, _ = tiny_snapshot
    clear_cache()
    a = load_model(store, h)
    assert load_model(store, h) is a
    check_consensus_mode(a)
    assert assemble_model(store, h) is not a
