import math

import pytest
import torch
from poai.quiz.loss import build_batch, sample_losses, sample_losses_from_logits


def test_build_batch_layout() -> None:
    b = build_batch([(1, 2), (3, 4)], [(5, 6, 7), (8, 9, 10)])
    assert b.dtype == torch.int64
    assert b.tolist() == [[1, 2, 5, 6, 7], [3, 4, 8, 9, 10]]
    with pytest.raises(ValueError):
        build_batch([(1,)], [(2,), (3,)])
    with pytest.raises(ValueError):
        build_batch([(1,), (2,)], [(2, 3), (3,)])


def test_loss_scores_exactly_the_data_tokens() -> None:
    # Salt of 2, data of 3: positions 1, 2, 3 predict tokens 2, 3, 4 (the 3 data tokens).
    vocab = 5
    batch = torch.tensor([[0, 1, 2, 3, 4]])
    logits = torch.zeros(1, 5, vocab)
    # position t puts all its mass on token t+1, except position 1 which is uniform
    for t in range(4):
        logits[0, t, t + 1] = 50.0
    logits[0, 1] = 0.0
    v = sample_losses_from_logits(logits, batch, 2)
    # position 1 (last salt token -> first data token) contributes log(5); 2 and 3 contribute ~0
    assert v.shape == (1,)
    assert math.isclose(float(v[0]), math.log(vocab) / 3, rel_tol=1e-5)
    # the first salt position (0) and the last position (4) never count
    logits[0, 0] = torch.randn(vocab)
    logits[0, 4] = torch.randn(vocab)
    assert float(sample_losses_from_logits(logits, batch, 2)[0]) == float(v[0])


def test_loss_shape_checks() -> None:
    with pytest.raises(ValueError):
        sample_losses_from_logits(torch.zeros(1, 4, 3), torch.zeros(1, 5, dtype=torch.int64), 1)
    with pytest.raises(ValueError):
        sample_losses_from_logits(torch.zeros(1, 4, 3), torch.zeros(1, 4, dtype=torch.int64), 0)
    with pytest.raises(ValueError):
        sample_losses_from_logits(torch.zeros(1, 4, 3), torch.zeros(1, 4, dtype=torch.int64), 4)


class _Echo(torch.nn.Module):
    """A stand-in LM whose logits are a fixed function of the input ids (tests the plumbing)."""

    class _Out:
        def __init__(self, logits: torch.Tensor) -> None:
            self.logits = logits

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> "_Echo._Out":
        return self._Out(torch.nn.functional.one_hot(input_ids, 7).float() * 3.0)


def test_sample_losses_runs_model_once_per_batch() -> None:
    batch = torch.tensor([[1, 1, 1, 1], [1, 2, 3, 4]])
    v = sample_losses(_Echo(), batch, 1)
    # row 0 predicts "same token again" correctly, row 1 never does
    assert v[0] < v[1]
    assert all(isinstance(x, float) for x in v)


def test_segment_losses_are_per_segment_means_sample_major() -> None:
    torch.manual_seed(0)
    batch = torch.randint(0, 6, (3, 2 + 8))
    logits = torch.randn(3, 10, 6)
    per_token = torch.nn.functional.cross_entropy(
        logits[:, 1:-1].transpose(1, 2), batch[:, 2:], reduction="none")  # (3, 8)
    v = sample_losses_from_logits(logits, batch, 2, segments=4)
    assert v.shape == (12,) and v.dtype == torch.float32
    for j in range(3):
        for g in range(4):
            assert math.isclose(float(v[j * 4 + g]), float(per_token[j, 2 * g : 2 * g + 2].mean()),
                                rel_tol=1e-6)
    # the segments' mean is the whole sample's loss (equal segment lengths)
    whole = sample_losses_from_logits(logits, batch, 2)
    assert torch.allclose(v.reshape(3, 4).mean(dim=1), whole, rtol=1e-6)
    with pytest.raises(ValueError, match="segments"):
        sample_losses_from_logits(logits, batch, 2, segments=3)
