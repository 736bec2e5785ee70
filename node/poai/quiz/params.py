"""Quiz chain parameters (K, S, B, sample length, epoch length), as carried in the genesis config.

These are consensus parameters: every node of a chain must use the same values, so they live in
the genesis config and are validated here once, not trusted ad hoc by each caller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# q_j travels in a fixed-width uint64 big-endian field of the 32-byte mixHash.
FIELD_BYTES = 8
MIX_HASH_BYTES = 32
MAX_K = MIX_HASH_BYTES // FIELD_BYTES


@dataclass(frozen=True)
class QuizParams:
    """Consensus parameters of the quiz-loss seal (see DESIGN.md "Quiz-loss seal")."""

    k: int = 4  # samples per attempt (K)
    salt_len: int = 8  # salt tokens prepended to each sample (S)
    grid_bits: int = 12  # B: q_j = floor(v_j * 2**B)
    sample_len: int = 64  # data tokens per sample
    epoch_blocks: int = 100  # blocks per epoch

    def __post_init__(self) -> None:
        for name in ("k", "salt_len", "grid_bits", "sample_len", "epoch_blocks"):
            value = getattr(self, name)
            if type(value) is not int:
                raise TypeError(f"QuizParams.{name} must be an int, got {type(value).__name__}")
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"QuizParams.k must be in [1, {MAX_K}] (uint64 fields in mixHash)")
        # The first data token is predicted from the last salt token, so S >= 1 is required.
        if not 1 <= self.salt_len <= 1024:
            raise ValueError("QuizParams.salt_len must be in [1, 1024]")
        # B <= 32 keeps q = floor(v * 2**B) far inside a uint64 for any finite float32 loss
        # the model can produce (cross-entropy of a byte vocabulary is < 2**31 in practice).
        if not 1 <= self.grid_bits <= 32:
            raise ValueError("QuizParams.grid_bits must be in [1, 32]")
        if not 1 <= self.sample_len <= 4096:
            raise ValueError("QuizParams.sample_len must be in [1, 4096]")
        if self.epoch_blocks < 1:
            raise ValueError("QuizParams.epoch_blocks must be >= 1")

    @property
    def grid_scale(self) -> int:
        """2**B: one grid step is 1 / grid_scale nats."""
        return 1 << self.grid_bits

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuizParams:
        known = {"k", "salt_len", "grid_bits", "sample_len", "epoch_blocks"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown quiz parameters: {sorted(unknown)}")
        missing = known - set(data)
        if missing:
            raise ValueError(f"missing quiz parameters: {sorted(missing)}")
        return cls(**{name: data[name] for name in known})
