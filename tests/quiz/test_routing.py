import math

import pytest
import torch
from poai.quiz.context import QuizContext, load_runner
from poai.quiz.loss import sample_losses
from poai.quiz.routing import (
    DEFAULT_TAU,
    RoutingMargin,
    attempt_routing,
    forward_with_router_logits,
    relevant_mask,
    routing_gaps,
    routing_margin,
    top_k_of,
)

SH = bytes([5] * 32)


def test_gap_is_between_kth_and_next() -> None:
    logits = torch.tensor([[[[3.0, 1.0, 0.5, 2.0]]]])  # 1 layer, 1 sample, 1 token
    assert routing_gaps(logits, 2).item() == pytest.approx(1.0)  # 2.0 vs 1.0
    assert routing_gaps(logits, 1).item() == pytest.approx(1.0)  # 3.0 vs 2.0
    # a tie inside the chosen experts does not count, only k-th vs (k+1)-th
    tied_top = torch.tensor([[[[2.0, 2.0, 0.0, -1.0]]]])
    assert routing_gaps(tied_top, 2).item() == pytest.approx(2.0)


def test_margin_finds_the_smallest_relevant_gap() -> None:
    layers, k, t, e, salt = 2, 3, 6, 4, 2
    logits = torch.zeros(layers, k, t, e)
    logits[..., 0], logits[..., 1], logits[..., 2] = 3.0, 2.0, 1.0  # gap 1 everywhere
    logits[0, 1, 3, 2] = 2.0 - 1e-6  # a relevant near-tie
    m = routing_margin(logits, 2, salt)
    assert (m.layer, m.sample, m.token) == (0, 1, 3)
    assert m.gap < 2e-6 and not m.publishable(DEFAULT_TAU) and m.publishable(0.0)


def test_decisions_that_cannot_reach_a_scored_logit_are_ignored() -> None:
    layers, k, t, e, salt = 2, 2, 6, 4, 3
    base = torch.zeros(layers, k, t, e)
    base[..., 0], base[..., 1], base[..., 2] = 3.0, 2.0, 1.0
    last_token = base.clone()
    last_token[0, 0, t - 1, 2] = 2.0  # last position: its logits are never scored
    assert routing_margin(last_token, 2, salt).gap == pytest.approx(1.0)
    salt_last_layer = base.clone()
    salt_last_layer[1, 1, salt - 2, 2] = 2.0  # last layer, a salt position before S-1
    assert routing_margin(salt_last_layer, 2, salt).gap == pytest.approx(1.0)
    salt_first_layer = base.clone()
    salt_first_layer[0, 1, salt - 2, 2] = 2.0  # earlier layer: reaches later positions
    assert routing_margin(salt_first_layer, 2, salt).gap == 0.0
    scored = base.clone()
    scored[1, 0, salt - 1, 2] = 2.0  # last layer, position S-1 predicts the first data token
    assert routing_margin(scored, 2, salt).gap == 0.0
    mask = relevant_mask(layers, k, t, salt)
    assert int(mask.sum()) == layers * k * (t - 1) - k * (salt - 1)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="layers, K, T, experts"):
        routing_gaps(torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match="top_k"):
        routing_gaps(torch.zeros(1, 1, 1, 2), 2)
    with pytest.raises(ValueError, match="salt_len"):
        relevant_mask(1, 1, 4, 4)
    with pytest.raises(ValueError, match="Mixture-of-Experts"):
        top_k_of(torch.nn.Linear(2, 2))
    assert routing_margin(torch.zeros(0, 2, 4, 0), 2, 1) == RoutingMargin(math.inf)


def test_guard_pass_reproduces_the_mined_losses(tiny_ctx: QuizContext) -> None:
    runner = load_runner(tiny_ctx)
    p = tiny_ctx.params
    for nonce in range(5):
        batch = runner.attempt(tiny_ctx.epoch_key, SH, nonce).batch
        losses, logits = forward_with_router_logits(runner.model, batch, p.salt_len, p.segments)
        assert losses == sample_losses(runner.model, batch, p.salt_len, p.segments)  # bit for bit
        assert len(losses) == p.values
        assert logits.shape == (2, p.k, p.salt_len + p.sample_len, 4)


def test_real_model_near_tie_is_caught(tiny_ctx: QuizContext, tied_ctx: QuizContext) -> None:
    normal, tied = load_runner(tiny_ctx), load_runner(tied_ctx)
    salt = tiny_ctx.params.salt_len
    published = 0
    for nonce in range(10):
        batch = normal.attempt(tiny_ctx.epoch_key, SH, nonce).batch
        _, m = attempt_routing(tied.model, batch, salt)
        assert m.gap < 1e-6 and m.layer == 0 and not m.publishable()
        _, m = attempt_routing(normal.model, batch, salt)
        published += m.publishable()
    assert published >= 8  # a random model has near-ties too, but rarely
