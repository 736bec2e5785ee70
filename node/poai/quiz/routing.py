"""Routing-margin guard: a miner-side publication rule against router near-ties.

Not consensus: verifiers accept exactly what they accepted before (seal.py).  This decides which
found seals an honest miner publishes.

Why.  The model routes each token, in each layer, to the top-k experts of its router (Mixtral's
MixtralTopKRouter: k = 2 of 8, chosen by torch.topk over softmax(router logits)).  Honest nodes
compute the router logits with last-bit differences (CPU instruction set, thread count, batch
layout).  When the k-th and (k+1)-th largest logits of a token are closer than those differences,
two honest nodes can route the token to different experts, and the sample's loss then moves by a
sizeable part of a grid step or more: bench/quiz_agreement.py once saw quiz 273, layer 2,
token 15 with its 2nd and 3rd logits 2.4e-7 apart route to experts {1,4} under AVX-512 and
{1,3} under plain kernels, moving the loss by 0.47 grid steps.  No claim margin on q covers that.
So before publishing a seal the miner recomputes the attempt's router logits (one extra forward
pass, only for found seals) and publishes it only if every routing decision that can reach a
scored logit has a gap of at least `tau` between its k-th and (k+1)-th logits; otherwise it
keeps grinding.

Which gap.  Only the k-th vs (k+1)-th gap changes the expert set.  A tie among the chosen k does
not matter: the normalised weights p_i / Σ p are continuous in the logits, and the expert outputs
are summed in expert-index order whatever the top-k order.  topk compares softmax probabilities,
whose relative gap (p_k − p_{k+1}) / p_k = 1 − e^{−Δ} ≈ Δ for the logit gap Δ, plus softmax
rounding of a few float32 ulps (~2e-7 relative): so the logit gap is the measure, and tau must
exceed the honest divergence of logit gaps plus that rounding.

Which decisions.  Position t's router output in layer l reaches positions ≥ t of later layers
(causal attention) and position t's own logits.  The last position's logits are never scored and
nothing follows it, so its decisions are ignored in every layer; in the last layer, positions
before S−1 (salt positions whose logits are not scored) are ignored too.  Everything else counts.

tau.  Measured with bench/quiz_agreement.py on the genesis model (2,100 quizzes, ~2.4M relevant
routing decisions per setting; the reference — 1 thread, one batch, AVX-512 — against 2 threads,
one sample at a time, ATEN_CPU_CAPABILITY default / avx2 / avx512):
- honest router logits differ by up to 2.6e-5 (plain vs AVX-512 kernels; 1.1e-5 for the other
  settings), far more than the ~1e-7 of one float32 ulp: the residual stream carries last-bit
  differences from layer to layer and the logits reach ±15.  The gap of a decision, which is
  what decides a flip, differed by at most 1.26e-5 (of ~12M decision comparisons);
- a decision's gap is roughly uniform near 0 with density ~1 per logit unit, and an attempt has
  ~1,150 relevant decisions, so the guard drops ≈ 1,150 · tau of attempts: measured 1.1% at
  1e-5, 2.9% at 3e-5, 3.8% at 4e-5, 4.4% at 5e-5, 11.5% at 1e-4;
- without the guard one quiz in 2,100 was rejected (quiz 273: gap 2.4e-7, routed differently by
  plain and AVX-512 kernels); with it, none, and no routing flip was published.
DEFAULT_TAU = 4e-5: 3.2x the largest gap divergence measured (1.5x the largest logit
divergence) for 3.8% of found seals dropped — a hashrate cost every honest miner pays alike
(difficulty absorbs it).  A flip needs gap < |gap divergence|, so with tau above every
divergence seen, a published flip needs a node whose noise is 3x worse than plain kernels.
Raise tau (≈ 1.1% of hashrate per 1e-5) for hardware whose noise is larger (GPUs, other ISAs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from poai.quiz.loss import sample_losses_from_logits

DEFAULT_TAU = 4e-5  # logit units; see module docstring for the measurement behind it


@dataclass(frozen=True)
class RoutingMargin:
    """The smallest relevant k-th vs (k+1)-th router-logit gap of an attempt, and where it is."""

    gap: float  # math.inf for a model without routers
    layer: int = -1
    sample: int = -1
    token: int = -1

    def publishable(self, tau: float = DEFAULT_TAU) -> bool:
        return self.gap >= tau


def forward_with_router_logits(
    model: torch.nn.Module, batch: torch.Tensor, salt_len: int, segments: int = 1
) -> tuple[list[float], torch.Tensor]:
    """One forward pass: the committed losses (as sample_losses computes them) and the router
    logits of every layer, float32 of shape (layers, K, T, experts) (layers = 0 without routers)."""
    k, t = batch.shape
    with torch.inference_mode():
        out = model(input_ids=batch, use_cache=False, output_router_logits=True)
        losses = sample_losses_from_logits(out.logits, batch, salt_len, segments)
        layers = getattr(out, "router_logits", None) or ()
        if layers:
            logits = torch.stack([r.float().reshape(k, t, -1) for r in layers])
        else:
            logits = torch.empty(0, k, t, 0)
    return [float(v) for v in losses.tolist()], logits


def relevant_mask(layers: int, samples: int, tokens: int, salt_len: int) -> torch.Tensor:
    """bool (layers, K, T): the routing decisions that can reach a scored logit."""
    if not 1 <= salt_len < tokens:
        raise ValueError(f"salt_len {salt_len} must be in [1, {tokens})")
    mask = torch.ones(layers, samples, tokens, dtype=torch.bool)
    mask[:, :, tokens - 1] = False
    if layers:
        mask[layers - 1, :, : salt_len - 1] = False
    return mask


def routing_gaps(router_logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """(layers, K, T) gap between the top_k-th and (top_k+1)-th largest logit of each decision."""
    if router_logits.dim() != 4:
        raise ValueError(f"router logits must be (layers, K, T, experts), got "
                         f"{tuple(router_logits.shape)}")
    experts = router_logits.shape[-1]
    if not 1 <= top_k < experts:
        raise ValueError(f"top_k {top_k} must be in [1, {experts}) for {experts} experts")
    top = torch.topk(router_logits, top_k + 1, dim=-1).values
    return top[..., top_k - 1] - top[..., top_k]


def routing_margin(router_logits: torch.Tensor, top_k: int, salt_len: int) -> RoutingMargin:
    """The smallest gap over the relevant decisions (see module docstring)."""
    layers, samples, tokens = router_logits.shape[:3]
    if layers == 0 or router_logits.shape[-1] == 0:
        return RoutingMargin(math.inf)
    gaps = routing_gaps(router_logits, top_k)
    gaps = gaps.masked_fill(~relevant_mask(layers, samples, tokens, salt_len), math.inf)
    flat = int(torch.argmin(gaps).item())
    layer, rest = divmod(flat, samples * tokens)
    sample, token = divmod(rest, tokens)
    return RoutingMargin(float(gaps[layer, sample, token].item()), layer, sample, token)


def top_k_of(model: torch.nn.Module) -> int:
    """Experts per token of a Mixtral-style model (config.num_experts_per_tok)."""
    config = getattr(model, "config", None)
    k = getattr(config, "num_experts_per_tok", None)
    if not isinstance(k, int) or k < 1:
        raise ValueError("model has no num_experts_per_tok: not a Mixture-of-Experts model")
    return k


def attempt_routing(
    model: torch.nn.Module, batch: torch.Tensor, salt_len: int, segments: int = 1
) -> tuple[list[float], RoutingMargin]:
    """Recompute an attempt with its router logits: (losses, routing margin)."""
    losses, logits = forward_with_router_logits(model, batch, salt_len, segments)
    return losses, routing_margin(logits, top_k_of(model), salt_len)


__all__ = [
    "DEFAULT_TAU",
    "RoutingMargin",
    "attempt_routing",
    "forward_with_router_logits",
    "relevant_mask",
    "routing_gaps",
    "routing_margin",
    "top_k_of",
]
