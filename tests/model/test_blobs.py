from __future__ import annotations

import copy

import pytest
import torch
from poai.model.blobs import (
    check_expert_tensors,
    decode_tensors,
    expert_blob,
    expert_name,
    is_expert_key,
    trunk_blob,
)
from poai.model.config import ModelSpec
from poai.model.store import BlobError
from safetensors.torch import load as st_load
from transformers import MixtralForCausalLM


def test_expert_name() -> None:
    assert expert_name(3, 5) == "layer3.expert5"


def test_trunk_and_experts_partition_the_weights(
    tiny_model: MixtralForCausalLM, tiny_spec: ModelSpec,
) -> None:
    state = tiny_model.state_dict()
    trunk = st_load(trunk_blob(tiny_model))
    assert not any(is_expert_key(k) for k in trunk)
    assert {k for k in state if not is_expert_key(k)} == set(trunk)
    # embeddings, attention, norms, routers and lm_head are all trunk
    for part in ("embed_tokens", "self_attn.q_proj", "input_layernorm", "mlp.gate", "lm_head"):
        assert any(part in k for k in trunk), part
    n_expert_params = sum(t.numel() for k, t in state.items() if is_expert_key(k))
    per_expert = sum(t.numel() for t in st_load(expert_blob(tiny_model, 0, 0)).values())
    assert per_expert * tiny_spec.num_local_experts * tiny_spec.num_hidden_layers == \
        n_expert_params


def test_expert_blob_is_the_slice(tiny_model: MixtralForCausalLM) -> None:
    layer, e = 1, 2
    t = st_load(expert_blob(tiny_model, layer, e))
    experts = tiny_model.model.layers[layer].mlp.experts
    assert torch.equal(t["gate_up_proj"], experts.gate_up_proj[e])
    assert torch.equal(t["down_proj"], experts.down_proj[e])
    assert not torch.equal(t["down_proj"], experts.down_proj[e + 1])


def test_blob_bytes_are_deterministic(tiny_model: MixtralForCausalLM) -> None:
    twin = copy.deepcopy(tiny_model)
    assert trunk_blob(tiny_model) == trunk_blob(twin)
    assert expert_blob(tiny_model, 0, 3) == expert_blob(twin, 0, 3)
    with torch.no_grad():
        twin.model.layers[0].mlp.experts.down_proj[3, 0, 0] += 1e-6
    assert expert_blob(tiny_model, 0, 3) != expert_blob(twin, 0, 3)
    assert expert_blob(tiny_model, 0, 2) == expert_blob(twin, 0, 2)


def test_decode_rejects_garbage_and_bad_shapes(
    tiny_model: MixtralForCausalLM, tiny_spec: ModelSpec,
) -> None:
    with pytest.raises(BlobError, match="ab" * 32):
        decode_tensors(b"not safetensors", "ab" * 32)
    tensors = decode_tensors(expert_blob(tiny_model, 0, 0), "cd" * 32)
    check_expert_tensors(tensors, tiny_spec, "cd" * 32)
    tensors["down_proj"] = tensors["down_proj"][:, :-1]
    with pytest.raises(BlobError, match="shape"):
        check_expert_tensors(tensors, tiny_spec, "cd" * 32)
    with pytest.raises(BlobError, match="tensors"):
        check_expert_tensors({"down_proj": tensors["down_proj"]}, tiny_spec, "cd" * 32)
