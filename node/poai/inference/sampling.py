"""Choosing the next token: greedy, or temperature + nucleus (top-p) sampling from a seeded
``torch.Generator``, so one request with one seed gives the same tokens on the same machine."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from poai.model.tokenizer import BOS_ID, BYTE_TOKENS, EOS_ID, PAD_ID

MAX_STOP_SEQUENCES = 4  # OpenAI's limit


class SamplingError(ValueError):
    """Sampling settings out of range (the API answers 400 with the parameter's name)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise SamplingError("max_tokens", f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise SamplingError("temperature",
                                f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError("top_p", f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.seed < 2**63:
            raise SamplingError("seed", f"seed must be in [0, 2**63), got {self.seed}")
        if len(self.stop) > MAX_STOP_SEQUENCES or any(not s for s in self.stop):
            raise SamplingError("stop", f"stop: at most {MAX_STOP_SEQUENCES} non-empty strings")


def generator_for(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g


def next_token(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator) -> int:
    """The next token id from one position's logits [V]: a byte or EOS (padding, BOS and any id
    beyond the byte vocabulary of an imported model are never chosen)."""
    scores = logits.detach().to(torch.float32).clone()
    allowed = torch.zeros_like(scores, dtype=torch.bool)
    allowed[:BYTE_TOKENS] = True
    allowed[EOS_ID] = True
    allowed[PAD_ID] = allowed[BOS_ID] = False
    scores[~allowed] = float("-inf")
    if params.temperature == 0.0:
        return int(torch.argmax(scores).item())
    probs = torch.softmax(scores / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True, stable=True)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        sorted_probs[before >= params.top_p] = 0.0  # keep the smallest prefix reaching top_p
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=gen)
        return int(order[choice].item())
    return int(torch.multinomial(probs, 1, generator=gen).item())
