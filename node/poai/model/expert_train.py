"""Fine-tuning one expert of a snapshot: slot ``(layer, expert)`` and nothing else.

A layer's experts are one stacked parameter per projection (``gate_up_proj`` [E, 2I, H],
``down_proj`` [E, H, I]), so a parameter filter cannot select one expert. Only those two
parameters of the layer get gradients, a hook zeroes every other slice's gradient, and the
optimizer runs without weight decay: AdamW's moments of the other slices stay exactly zero, so
their update is exactly zero. :func:`train_expert` still checks every other tensor and slice
bit for bit afterwards and raises if anything else moved.

The validation figures are the public validation set's mean loss (nats/byte) over all predicted
tokens, and over the tokens the router of ``layer`` sends to ``expert`` (top-k). Routing at
``layer`` depends only on the layers below it, which do not change, so both evaluations use the
same routed tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import MixtralForCausalLM

from poai.model.blobs import EXPERT_PARAMS, expert_key
from poai.model.config import ModelSpec, spec_of
from poai.model.train import TrainSettings, train


class ExpertTrainError(ValueError):
    """A slot that does not exist, unusable training text, or a slice that moved."""


@dataclass(frozen=True)
class RoutedLoss:
    overall: float  # nats/byte over every predicted token
    routed: float  # nats/byte over the tokens routed to the expert (nan if none)
    tokens: int
    routed_tokens: int


def check_slot(spec: ModelSpec, layer: int, expert: int) -> None:
    if not 0 <= layer < spec.num_hidden_layers:
        raise ExpertTrainError(f"layer {layer} does not exist: the model has layers "
                               f"0..{spec.num_hidden_layers - 1}")
    if not 0 <= expert < spec.num_local_experts:
        raise ExpertTrainError(f"expert {expert} does not exist: each layer has experts "
                               f"0..{spec.num_local_experts - 1}")


@torch.no_grad()
def routed_loss(model: MixtralForCausalLM, windows: torch.Tensor, layer: int, expert: int,
                batch_size: int = 32) -> RoutedLoss:
    """Validation loss over all tokens and over those whose top-k at ``layer`` has ``expert``."""
    was_training = model.training
    model.train(False)  # eval mode
    k = model.config.num_experts_per_tok
    total = routed_total = 0.0
    count = routed_count = 0
    for i in range(0, windows.shape[0], batch_size):
        w = windows[i : i + batch_size]
        out = model(input_ids=w[:, :-1], output_router_logits=True)
        logits = out.logits
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                              reduction="none")
        router = out.router_logits[layer]  # [batch*seq, E], same token order as nll
        hit = (router.topk(k, dim=-1).indices == expert).any(dim=-1)
        total += float(nll.sum())
        count += nll.numel()
        routed_total += float(nll[hit].sum())
        routed_count += int(hit.sum())
    model.train(was_training)
    routed = routed_total / routed_count if routed_count else float("nan")
    return RoutedLoss(total / count, routed, count, routed_count)


def _slice_mask(param: torch.Tensor, expert: int) -> torch.Tensor:
    mask = torch.zeros_like(param)
    mask[expert] = 1.0
    return mask


def _masker(mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda grad: grad * mask


def train_expert(
    model: MixtralForCausalLM,
    data: torch.Tensor,
    layer: int,
    expert: int,
    settings: TrainSettings,
    *,
    progress: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Fine-tune slot ``(layer, expert)`` of ``model`` in place; returns per-step losses.

    Raises :class:`ExpertTrainError` for a slot that does not exist or if any other tensor or
    slice changed (which would be a bug, never a silent result).
    """
    check_slot(spec_of(model), layer, expert)
    if settings.weight_decay != 0.0:
        raise ExpertTrainError("single-expert training runs without weight decay "
                               "(decay would move the other experts' slices)")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    targets = {expert_key(layer, p) for p in EXPERT_PARAMS}
    params = dict(model.named_parameters())
    for name in targets:
        params[name].requires_grad_(True)  # (train() sets the same; hooks need it first)
    handles = [
        params[name].register_hook(  # type: ignore[no-untyped-call]
            _masker(_slice_mask(params[name], expert)))
        for name in sorted(targets)]
    try:
        losses = train(model, data, settings, param_filter=lambda n: n in targets,
                       progress=progress)
    finally:
        for h in handles:
            h.remove()
        model.requires_grad_(False)
    after = model.state_dict()
    for name, old in before.items():
        new = after[name]
        if name in targets:
            others = [i for i in range(old.shape[0]) if i != expert]
            if not torch.equal(old[others], new[others]):
                raise ExpertTrainError(f"training moved another expert's slice of {name}")
        elif not torch.equal(old, new):
            raise ExpertTrainError(f"training moved tensor {name}")
    return losses


def settings_for(steps: int, lr: float, batch_size: int, seed: int) -> TrainSettings:
    """Fine-tuning settings: short warmup, no weight decay, the quiz's window length."""
    return TrainSettings(steps=steps, batch_size=batch_size, seq_len=64, lr=lr,
                         warmup=min(20, max(1, steps // 10)), weight_decay=0.0, seed=seed)


def eta_seconds(step: int, steps: int, elapsed: float) -> float:
    done = step + 1
    return elapsed / done * (steps - done) if done else 0.0
