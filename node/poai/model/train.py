"""Training and evaluation of the byte-level MoE model (genesis training, partial mining)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import MixtralForCausalLM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 400
    batch_size: int = 16
    seq_len: int = 64  # predicted tokens per window (the quiz's sample length)
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.01
    router_aux_loss_coef: float = 0.02  # keeps experts balanced so each carries real load
    seed: int = 0


def byte_tensor(text: str | bytes) -> torch.Tensor:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).to(torch.long)


def eval_windows(data: torch.Tensor, seq_len: int, max_windows: int) -> torch.Tensor:
    """Non-overlapping windows of seq_len+1 bytes, spread evenly over ``data``."""
    n = (data.numel() - 1) // seq_len
    if n < 1:
        raise ValueError(f"evaluation text shorter than {seq_len + 1} bytes")
    take = min(n, max_windows)
    starts = [(i * n // take) * seq_len for i in range(take)]
    return torch.stack([data[s : s + seq_len + 1] for s in starts])


@torch.no_grad()
def evaluate_loss(model: MixtralForCausalLM, windows: torch.Tensor, batch_size: int = 32) -> float:
    """Mean cross-entropy in nats per byte of every window's tokens 1.. given their prefix."""
    was_training = model.training
    model.train(False)  # eval mode
    total, count = 0.0, 0
    for i in range(0, windows.shape[0], batch_size):
        w = windows[i : i + batch_size]
        logits = model(input_ids=w[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                               reduction="sum")
        total += float(loss)
        count += w[:, 1:].numel()
    model.train(was_training)
    return total / count


def train(
    model: MixtralForCausalLM,
    data: torch.Tensor,
    settings: TrainSettings,
    *,
    param_filter: Callable[[str], bool] | None = None,
    progress: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place on random windows of ``data`` (a 1-D long tensor of byte ids).

    ``param_filter(name)`` selects the trainable parameters (all by default). Returns the
    per-step training losses. ``progress(step, loss, seconds)`` is called every 25 steps.
    """
    if data.numel() <= settings.seq_len + 1:
        raise ValueError("training text too short")
    gen = torch.Generator().manual_seed(settings.seed)
    params = [p for n, p in model.named_parameters() if param_filter is None or param_filter(n)]
    for n, p in model.named_parameters():
        p.requires_grad_(param_filter is None or param_filter(n))
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay,
                            betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < settings.warmup:
            return settings.lr * (step + 1) / settings.warmup
        t = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
        return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    model.config.router_aux_loss_coef = settings.router_aux_loss_coef
    model.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    offsets = torch.arange(settings.seq_len + 1)
    for step in range(settings.steps):
        starts = torch.randint(0, data.numel() - settings.seq_len - 1, (settings.batch_size,),
                               generator=gen)
        batch = data[starts[:, None] + offsets]
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(input_ids=batch[:, :-1], output_router_logits=True)
        logits = out.logits
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        loss = ce + settings.router_aux_loss_coef * out.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(ce.item())
        if progress is not None and (step % 25 == 0 or step == settings.steps - 1):
            progress(step, losses[-1], time.perf_counter() - t0)
    model.train(False)  # eval mode
    return losses
