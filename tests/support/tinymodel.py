"""A tiny model of the genesis structure, for fast inference tests."""

from __future__ import annotations

import torch
from poai.model.config import ModelSpec, build_model, consensus_mode
from transformers import MixtralForCausalLM

TINY_SPEC = ModelSpec(hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                      num_experts_per_tok=2, max_position_embeddings=128)


def tiny_model(seed: int) -> MixtralForCausalLM:
    torch.manual_seed(seed)
    return consensus_mode(build_model(TINY_SPEC))
