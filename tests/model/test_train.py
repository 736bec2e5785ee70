from __future__ import annotations

import pytest
import torch
from poai.model.train import TrainSettings, byte_tensor, eval_windows, evaluate_loss, train
from transformers import MixtralForCausalLM

TEXT = "abcabcabd " * 400


def test_training_lowers_validation_loss(tiny_model: MixtralForCausalLM) -> None:
    tiny_model.requires_grad_(True)
    windows = eval_windows(byte_tensor(TEXT), 32, 16)
    before = evaluate_loss(tiny_model, windows)
    losses = train(tiny_model, byte_tensor(TEXT), TrainSettings(steps=40, batch_size=4,
                                                                seq_len=32, warmup=5))
    assert len(losses) == 40
    after = evaluate_loss(tiny_model, windows)
    assert after < before - 1.0
    assert not tiny_model.training


def test_param_filter_freezes_everything_else(tiny_model: MixtralForCausalLM) -> None:
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    target = "model.layers.1.mlp.experts.down_proj"
    train(tiny_model, byte_tensor(TEXT), TrainSettings(steps=3, batch_size=2, seq_len=16),
          param_filter=lambda n: n == target)
    after = tiny_model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [target]


def test_short_text_is_rejected(tiny_model: MixtralForCausalLM) -> None:
    with pytest.raises(ValueError, match="shorter"):
        eval_windows(byte_tensor("tiny"), 64, 4)
    with pytest.raises(ValueError, match="too short"):
        train(tiny_model, byte_tensor("tiny"), TrainSettings(steps=1, seq_len=64))
