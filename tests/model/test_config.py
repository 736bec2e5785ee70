from __future__ import annotations

import pytest
import torch
from poai.compat.transformers import attn_implementation, experts_implementation
from poai.model.config import (
    CONSENSUS_THREADS,
    GENESIS_SPEC,
    ModelConfigError,
    ModelSpec,
    build_model,
    check_consensus_mode,
    consensus_mode,
    set_consensus_threads,
    spec_of,
)


def test_build_model_pins_eager_kernels(tiny_spec: ModelSpec) -> None:
    model = build_model(tiny_spec)
    assert attn_implementation(model.config) == "eager"
    assert experts_implementation(model.config) == "eager"
    for layer in model.model.layers:
        assert experts_implementation(layer.mlp.experts.config) == "eager"
        assert attn_implementation(layer.self_attn.config) == "eager"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_consensus_mode_sets_and_checks_everything(tiny_spec: ModelSpec) -> None:
    model = build_model(tiny_spec)
    with pytest.raises(ModelConfigError, match="training mode"):
        check_consensus_mode(model)  # fresh models are in train mode
    # Library defaults on CPU (sdpa, grouped_mm) are overridden, not trusted.
    model.set_attn_implementation("sdpa")
    model.set_experts_implementation("grouped_mm")
    model.to(torch.float64)
    with pytest.raises(ModelConfigError, match="attention 'sdpa'.*experts 'grouped_mm'"):
        check_consensus_mode(model)
    consensus_mode(model)
    check_consensus_mode(model)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())
    assert attn_implementation(model.config) == "eager"
    assert experts_implementation(model.config) == "eager"


def test_float64_model_is_not_consensus(tiny_spec: ModelSpec) -> None:
    model = consensus_mode(build_model(tiny_spec))
    model.model.norm.weight.data = model.model.norm.weight.data.double()
    with pytest.raises(ModelConfigError, match="non-float32"):
        check_consensus_mode(model)


def test_set_consensus_threads() -> None:
    before = torch.get_num_threads()
    try:
        set_consensus_threads()
        assert torch.get_num_threads() == CONSENSUS_THREADS == 1
    finally:
        torch.set_num_threads(before)


def test_genesis_spec_size() -> None:
    assert GENESIS_SPEC.num_experts_per_tok == 2
    model = build_model(GENESIS_SPEC)
    n = sum(p.numel() for p in model.parameters())
    assert n * 4 <= 8_000_000  # float32 weights stay small enough to commit
    assert spec_of(model) == GENESIS_SPEC


def test_spec_dict_round_trip_and_errors(tiny_spec: ModelSpec) -> None:
    assert ModelSpec.from_dict(tiny_spec.to_dict()) == tiny_spec
    with pytest.raises(ModelConfigError, match="unknown"):
        ModelSpec.from_dict({**tiny_spec.to_dict(), "dropout": 0.1})
    d = tiny_spec.to_dict()
    del d["hidden_size"]
    with pytest.raises(ModelConfigError, match="missing"):
        ModelSpec.from_dict(d)
    with pytest.raises(ModelConfigError, match="multiple of num_attention_heads"):
        ModelSpec(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ModelConfigError, match="num_experts_per_tok"):
        ModelSpec(num_local_experts=2, num_experts_per_tok=3)
    with pytest.raises(ModelConfigError, match="positive"):
        ModelSpec(num_hidden_layers=0)
    with pytest.raises(ModelConfigError, match="vocab_size"):
        ModelSpec(vocab_size=100)
