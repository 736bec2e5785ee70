from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from poai.model.config import ModelSpec
from poai.model.selective import SelectiveModel
from poai.model.snapshot import read_manifest
from poai.model.store import BlobError, BlobStore
from transformers import MixtralForCausalLM

Snapshot = tuple[BlobStore, str, MixtralForCausalLM]


def _logits(model: MixtralForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_one_token_step_bit_equal_with_fraction_of_bytes(
    tiny_snapshot: Snapshot, tiny_spec: ModelSpec,
) -> None:
    store, h, full = tiny_snapshot
    sel = SelectiveModel(store, h)
    assert sel.loaded_experts() == set()
    ids = torch.tensor([[ord("T")]])
    assert torch.equal(_logits(sel.model, ids), _logits(full, ids))
    loaded = sel.loaded_experts()
    # one token: top-2 experts in each layer
    assert len(loaded) == tiny_spec.num_experts_per_tok * tiny_spec.num_hidden_layers
    m = read_manifest(store, h)
    expected = len(m.to_bytes()) + store.size(m.trunk) + sum(
        store.size(m.experts[layer][e]) for layer, e in loaded)
    assert sel.bytes_loaded == expected
    assert sel.fraction_loaded() < 1.0
    assert sel.total_bytes == len(m.to_bytes()) + sum(store.size(x) for x in m.blob_hashes())


def test_prompt_bit_equal_and_loading_is_incremental(tiny_snapshot: Snapshot) -> None:
    store, h, full = tiny_snapshot
    sel = SelectiveModel(store, h)
    gen = torch.Generator().manual_seed(3)
    for length in (1, 16, 128):
        ids = torch.randint(0, 256, (1, length), generator=gen)
        assert torch.equal(_logits(sel.model, ids), _logits(full, ids))
    before = sel.bytes_loaded
    ids = torch.randint(0, 256, (2, 72), generator=gen)
    assert torch.equal(_logits(sel.model, ids), _logits(full, ids))
    assert sel.bytes_loaded >= before
    assert sel.fraction_loaded() <= 1.0


def test_unloaded_experts_are_nan_not_silently_zero(
    tiny_snapshot: Snapshot, tiny_spec: ModelSpec,
) -> None:
    store, h, _ = tiny_snapshot
    sel = SelectiveModel(store, h)
    sel.model(input_ids=torch.tensor([[65]]))
    loaded = sel.loaded_experts()
    for layer in range(tiny_spec.num_hidden_layers):
        w = sel.model.model.layers[layer].mlp.experts.down_proj
        for e in range(tiny_spec.num_local_experts):
            assert bool(torch.isnan(w[e]).all()) == ((layer, e) not in loaded)


def test_corrupted_expert_fails_on_first_use_only(
    tiny_snapshot: Snapshot, flip_byte: Callable[[Path, int], None],
) -> None:
    store, h, full = tiny_snapshot
    probe = SelectiveModel(store, h)
    ids = torch.tensor([[ord("x")]])
    probe.model(input_ids=ids)
    used = sorted(probe.loaded_experts())
    unused = [(layer, e) for layer in range(2) for e in range(4) if (layer, e) not in used]
    m = read_manifest(store, h)
    # corrupting an expert this token never routes to does not matter...
    flip_byte(store.path(m.experts[unused[0][0]][unused[0][1]]), 100)
    sel = SelectiveModel(store, h)
    assert torch.equal(_logits(sel.model, ids), _logits(full, ids))
    # ...corrupting one it does route to is caught, naming the blob
    bad = m.experts[used[0][0]][used[0][1]]
    flip_byte(store.path(bad), 100)
    sel2 = SelectiveModel(store, h)
    with pytest.raises(BlobError, match=bad):
        sel2.model(input_ids=ids)


def test_genesis_one_token_step_loads_a_fraction() -> None:
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import load_model

    store, h = genesis_store(), genesis_manifest_hash()
    sel = SelectiveModel(store, h)
    ids = torch.tensor([[ord("R")]])
    assert torch.equal(_logits(sel.model, ids), _logits(load_model(store, h), ids))
    spec = sel.manifest.spec
    assert len(sel.loaded_experts()) == spec.num_experts_per_tok * spec.num_hidden_layers
    assert sel.fraction_loaded() < 0.5  # measured 0.38: trunk + 8 of 32 experts
