"""Quiz chain parameters (K, G, S, B, sample length, epoch length), as carried in the genesis
config.

These are consensus parameters: every node of a chain must use the same values, so they live in
the genesis config and are validated here once, not trusted ad hoc by each caller.

Committed values.  Each of the K samples is scored over G equal segments of its data tokens,
so an attempt commits K·G values q = floor(v · 2**B), each a uint16 field of the 32-byte mixHash
(K·G <= 16).  Why many values per forward pass: a forger who guesses the values instead of
running the model succeeds with p_guess = Π p_value, so soundness grows exponentially in the
number of committed values, and G segments of the same pass cost no extra compute
(bench/quiz_attacks.py measures p per value and the resulting forged/honest cost ratio:
p_guess ~1.5e-18 for the devnet's K = 4, G = 4, B = 10, and a forger skipping the model pays
>= 1.35e9 times the honest cost per block at every difficulty up to 1e12 with 1 ns keccaks;
docs/BENCHMARKS.md "Quiz soundness at internet scale").  B = 10 rather than finer: see
poai.quiz.miner (the claim margin).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Each committed value q travels in a fixed-width uint16 big-endian field of the 32-byte
# mixHash: 16 values.  At B = 10 a uint16 holds losses below 64 nats; a larger q is never
# published by a miner and never accepted by a verifier (reduce.QMAX).
FIELD_BYTES = 2
MIX_HASH_BYTES = 32
MAX_VALUES = MIX_HASH_BYTES // FIELD_BYTES


@dataclass(frozen=True)
class QuizParams:
    """Consensus parameters of the quiz-loss seal (see DESIGN.md "Quiz-loss seal")."""

    k: int = 4  # samples per attempt (K)
    segments: int = 4  # G: each sample's loss is committed per segment of sample_len / G tokens
    salt_len: int = 8  # salt tokens prepended to each sample (S)
    grid_bits: int = 10  # B: q_i = floor(v_i * 2**B)
    sample_len: int = 64  # data tokens per sample
    epoch_blocks: int = 100  # blocks per epoch

    def __post_init__(self) -> None:
        for name in ("k", "segments", "salt_len", "grid_bits", "sample_len", "epoch_blocks"):
            value = getattr(self, name)
            if type(value) is not int:
                raise TypeError(f"QuizParams.{name} must be an int, got {type(value).__name__}")
        if self.k < 1 or self.segments < 1 or self.k * self.segments > MAX_VALUES:
            raise ValueError(f"QuizParams.k * segments must be in [1, {MAX_VALUES}] "
                             "(uint16 fields in mixHash)")
        # The first data token is predicted from the last salt token, so S >= 1 is required.
        if not 1 <= self.salt_len <= 1024:
            raise ValueError("QuizParams.salt_len must be in [1, 1024]")
        # B <= 15 leaves a uint16 field room for losses of at least 2 nats.
        if not 1 <= self.grid_bits <= 15:
            raise ValueError("QuizParams.grid_bits must be in [1, 15]")
        if not 1 <= self.sample_len <= 4096:
            raise ValueError("QuizParams.sample_len must be in [1, 4096]")
        if self.sample_len % self.segments:
            raise ValueError("QuizParams.sample_len must be a multiple of segments")
        if self.epoch_blocks < 1:
            raise ValueError("QuizParams.epoch_blocks must be >= 1")

    @property
    def values(self) -> int:
        """K·G: committed values per attempt (uint16 fields used in the mixHash)."""
        return self.k * self.segments

    @property
    def grid_scale(self) -> int:
        """2**B: one grid step is 1 / grid_scale nats."""
        return 1 << self.grid_bits

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuizParams:
        known = {"k", "segments", "salt_len", "grid_bits", "sample_len", "epoch_blocks"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown quiz parameters: {sorted(unknown)}")
        missing = known - set(data)
        if missing:
            raise ValueError(f"missing quiz parameters: {sorted(missing)}")
        return cls(**{name: data[name] for name in known})
