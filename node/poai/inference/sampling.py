"""Choosing the next token: greedy, or temperature + nucleus (top-p) sampling by the chain's
decoding rule (poai.consensus.inference_check): output position i uses the keccak-based draw
``draw(seed, i)``, so one request with one seed gives the same tokens on any machine up to
last-bit float differences, and a market worker's honest answer always passes INFERENCE_CHECK."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from poai.consensus.inference_check import draw as seeded_draw
from poai.consensus.inference_check import greedy_choice, sample_choice

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
        if not 0 <= self.seed < 2**64:
            raise SamplingError("seed", f"seed must be in [0, 2**64), got {self.seed}")
        if len(self.stop) > MAX_STOP_SEQUENCES or any(not s for s in self.stop):
            raise SamplingError("stop", f"stop: at most {MAX_STOP_SEQUENCES} non-empty strings")


def next_token(logits: torch.Tensor, params: SamplingParams, position: int) -> int:
    """The token chosen at output ``position`` from that position's logits [V]: a byte or EOS
    (padding, BOS and any id beyond the byte vocabulary of an imported model are never chosen).
    Greedy is the argmax; sampling picks the token whose probability interval holds
    ``draw(seed, position)`` (temperature, top-p nucleus, intervals in token-id order)."""
    if params.temperature == 0.0:
        return greedy_choice(logits)
    return sample_choice(logits, params.temperature, params.top_p,
                         seeded_draw(params.seed, position))
