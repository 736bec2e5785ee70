"""The objective quality gate (consensus): does a snapshot's claimed improvement hold?

A snapshot proposal carries a claim (ModelRegistry ``registerClaimedSnapshot``): for each of the
``windows`` public validation windows (``poai.model.genesis.VALIDATION_TEXT``, windows of
``seq_len + 1`` bytes spread evenly over it, the genesis evaluation's layout), the quantized
mean next-byte loss of the base snapshot and of the new one, ``q = round(v * 2**B)`` on the
quiz's grid (B = ``QuizParams.grid_bits``), packed as uint16 big-endian values: base values,
then new values.  The claimed improvement is ``Δ = (Σ q_base − Σ q_new) / (windows * 2**B)``.

Every node recomputes both models' per-window losses ``v'`` (the quiz's loss function and
consensus settings: float32, eager kernels, eval mode, one thread) and accepts the claim only if
every claimed q is the floor or the ceiling of its own ``v' * 2**B`` and ``Δ >= δ`` (the chain
config's ``qualityGate.minDelta``, an exact decimal).  Δ is computed from the claimed integers
only, so every node that accepts the values reaches the same decision.

Why round-to-nearest claims and floor-or-ceiling acceptance (unlike the seal's exact floor): a
claimant cannot choose its windows, so it cannot stay clear of bucket edges as a miner does;
with a nearest claim, an honest verifier whose value differs by less than half a grid step
(measured divergence across thread counts, instruction sets and batch layouts: far below that,
bench/quality_gate.py) always finds q among its floor and ceiling.  The freedom this leaves a
claimant is at most one grid step per value, so a false claim can inflate Δ by at most
``2 * 2**-B`` nats/byte (two values per window, averaged): δ is set several grid steps above it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch

from poai.quiz.loss import sample_losses
from poai.quiz.reduce import QMAX

GATE_SEQ_LEN = 64  # predicted bytes per window (the quiz's sample length)
EVAL_BATCH = 32  # windows per forward pass (rows are independent: see quiz/seal.py)
VALUE_BYTES = 2


class MalformedClaim(ValueError):
    """A claim that is not 2 * windows uint16 values."""


@dataclass(frozen=True)
class GateParams:
    windows: int  # validation windows (ModelRegistry.GATE_WINDOWS)
    grid_bits: int  # the quiz's B
    min_delta: Fraction  # δ, nats/byte
    seq_len: int = GATE_SEQ_LEN

    def __post_init__(self) -> None:
        if self.windows < 1:
            raise ValueError("the quality gate needs at least one window")
        if not 1 <= self.grid_bits <= 16:
            raise ValueError(f"grid_bits {self.grid_bits} out of range")
        if not isinstance(self.min_delta, Fraction):
            raise TypeError("min_delta must be a Fraction (exact)")


@dataclass(frozen=True)
class Claim:
    base: tuple[int, ...]
    new: tuple[int, ...]

    def delta_q(self) -> int:
        """Σ q_base − Σ q_new (grid steps summed over the windows)."""
        return sum(self.base) - sum(self.new)

    def delta(self, grid_bits: int) -> Fraction:
        """The claimed improvement Δ in nats/byte (exact)."""
        return Fraction(self.delta_q(), len(self.new) << grid_bits)


def encode_claim(claim: Claim) -> bytes:
    if len(claim.base) != len(claim.new):
        raise MalformedClaim("base and new need the same number of windows")
    values = (*claim.base, *claim.new)
    if any(type(q) is not int or not 0 <= q <= QMAX for q in values):
        raise MalformedClaim(f"claim values must be integers in 0..{QMAX}")
    return b"".join(q.to_bytes(VALUE_BYTES, "big") for q in values)


def decode_claim(data: bytes, windows: int) -> Claim:
    """The claim of ``windows`` windows in ``data``; MalformedClaim when the length is wrong."""
    want = 2 * VALUE_BYTES * windows
    if len(data) != want:
        raise MalformedClaim(f"claim has {len(data)} bytes, {want} expected ({windows} windows)")
    qs = [int.from_bytes(data[i : i + VALUE_BYTES], "big") for i in range(0, want, VALUE_BYTES)]
    return Claim(tuple(qs[:windows]), tuple(qs[windows:]))


def nearest_q(v: float, grid_bits: int) -> int:
    """The claimed value of loss v: round(v * 2**B), halves up (exact in float64)."""
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"loss must be finite and non-negative, got {v}")
    q = math.floor(v * (1 << grid_bits) + 0.5)
    if q > QMAX:
        raise ValueError(f"loss {v} is above the grid's range")
    return q


def accepts(q: int, v: float, grid_bits: int) -> bool:
    """Whether claimed q is the floor or the ceiling of the verifier's own v * 2**B."""
    if not math.isfinite(v) or v < 0:
        return False
    f = v * (1 << grid_bits)  # exact: a power-of-two scaling of a float32 value
    return q in (math.floor(f), math.ceil(f))


def claim_for(base_losses: Sequence[float], new_losses: Sequence[float],
              grid_bits: int) -> Claim:
    """The honest claim of two models' per-window losses."""
    if len(base_losses) != len(new_losses):
        raise ValueError("base and new losses need the same number of windows")
    return Claim(tuple(nearest_q(v, grid_bits) for v in base_losses),
                 tuple(nearest_q(v, grid_bits) for v in new_losses))


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # one line: why (accepted or not)
    delta: Fraction | None = None  # the claimed Δ (None: malformed claim)
    mismatches: int = 0  # claimed values this node's losses do not accept


def judge(claim_bytes: bytes, base_losses: Sequence[float], new_losses: Sequence[float],
          params: GateParams) -> Verdict:
    """The gate's decision on a claim, given this node's own per-window losses of the base and
    the new snapshot (``window_losses``). Pure: integers and floats in, a verdict out."""
    try:
        claim = decode_claim(claim_bytes, params.windows)
    except MalformedClaim as exc:
        return Verdict(False, f"malformed claim: {exc}")
    if len(base_losses) != params.windows or len(new_losses) != params.windows:
        raise ValueError(f"need {params.windows} losses of each model")
    delta = claim.delta(params.grid_bits)
    bad = [(name, i, q, v)
           for name, qs, vs in (("base", claim.base, base_losses), ("new", claim.new, new_losses))
           for i, (q, v) in enumerate(zip(qs, vs, strict=True))
           if not accepts(q, v, params.grid_bits)]
    if bad:
        name, i, q, v = bad[0]
        return Verdict(False, f"false claim: {len(bad)} value(s) do not match this node's "
                       f"losses (first: {name} window {i} claims q={q}, own loss {v:.6f} gives "
                       f"{v * (1 << params.grid_bits):.3f})", delta, len(bad))
    if delta < params.min_delta:
        return Verdict(False, f"claimed improvement {float(delta):.6f} nats/byte is below the "
                       f"minimum {float(params.min_delta):.6f}", delta)
    return Verdict(True, f"claim holds: improvement {float(delta):.6f} nats/byte >= "
                   f"{float(params.min_delta):.6f}", delta)


def validation_windows(text: bytes, params: GateParams) -> torch.Tensor:
    """The gate's (windows, seq_len + 1) int64 validation windows, spread evenly over ``text``
    (the layout of ``poai.model.train.eval_windows``)."""
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8).to(torch.int64)
    n = (data.numel() - 1) // params.seq_len
    if n < params.windows:
        raise ValueError(f"validation text holds {n} windows, the gate needs {params.windows}")
    starts = [(i * n // params.windows) * params.seq_len for i in range(params.windows)]
    return torch.stack([data[s : s + params.seq_len + 1] for s in starts])


def window_losses(model: torch.nn.Module, windows: torch.Tensor,
                  batch_size: int = EVAL_BATCH) -> list[float]:
    """Each window's mean next-byte cross-entropy (float32), the quiz's loss function with the
    window's first byte in the salt's place (it is context, never a target)."""
    out: list[float] = []
    for i in range(0, windows.shape[0], batch_size):
        out.extend(sample_losses(model, windows[i : i + batch_size], salt_len=1))
    return out


__all__ = ["Claim", "EVAL_BATCH", "GATE_SEQ_LEN", "GateParams", "MalformedClaim", "Verdict",
           "accepts", "claim_for", "decode_claim", "encode_claim", "judge", "nearest_q",
           "validation_windows", "window_losses"]
