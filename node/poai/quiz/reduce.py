"""From per-segment losses to the seal: quantisation, mixHash packing, loss hash, target check.

- q_i = floor(v_i · 2**B) for each of the K·G committed values (K samples × G segments, sample
  major).  v_i is a float32 loss; multiplying by a power of two is exact in float64, so the
  floor is exact too.
- mixHash = q_1 ‖ … ‖ q_KG as uint16 big-endian fields, then zero bytes up to 32 bytes
  (K·G <= 16).  Nonzero padding is malformed: a header has exactly one valid encoding of its
  values.  q > QMAX (a loss of 64 nats or more at B = 10) cannot be committed.
- ℓ̂ = int(keccak256(sealHash ‖ uint64be(nonce) ‖ mixHash)), valid when ℓ̂ < 2**256 // difficulty.
- A claimed q_i is accepted only when it is exactly floor(v'_i · 2**B) of the verifier's own v'_i.

Why exact acceptance, and how honest seals survive it.  An earlier rule accepted the floor or the
ceiling (|v'·2**B − q| < 1): that doubles a forger's odds per guessed value and hands every
honest pass up to 2 free tickets per value (2**16 combinations over 16 values: hash grinding,
not forward passes).  With exact acceptance a pass has at most one ticket.  Honest nodes differ
in the last float bits (bench/quiz_agreement.py), so a value whose v · 2**B sits within that
noise of an integer could floor differently on another node: the miner publishes a seal only
when every value clears the bucket boundaries by `margin` grid steps (claimable_values; the
same discipline as the routing guard), so every verifier whose values lie within `margin` of
the miner's computes the same floors.  The margin costs every honest miner the same share of
passes ((1 − 2·margin)**(K·G) of them yield a ticket); the difficulty absorbs it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from poai.quiz._hash import keccak256, require_bytes32, uint64be
from poai.quiz.params import FIELD_BYTES, MAX_VALUES, MIX_HASH_BYTES

QMAX = (1 << (8 * FIELD_BYTES)) - 1  # the largest committable q
TWO_256 = 1 << 256


class MalformedMixHash(ValueError):
    """The mixHash is not a canonical packing of K uint64 values."""


def quantize(v: float, grid_bits: int) -> int:
    """q = floor(v · 2**B) for a finite, non-negative loss v (may exceed QMAX)."""
    if not math.isfinite(v):
        raise ValueError(f"loss is not finite: {v}")
    if v < 0:
        raise ValueError(f"loss is negative: {v}")
    return math.floor(v * (1 << grid_bits))


def accepted_values(v: float, grid_bits: int) -> tuple[int, ...]:
    """The q values a verifier whose own loss is v accepts: floor(v · 2**B), if committable."""
    q = quantize(v, grid_bits)
    return (q,) if q <= QMAX else ()


def is_accepted(q: int, v: float, grid_bits: int) -> bool:
    """Whether a claimed q is exactly floor(v · 2**B) of the verifier's own v (and <= QMAX)."""
    return q in accepted_values(v, grid_bits)


def claimable_values(v: float, grid_bits: int, margin: float) -> tuple[int, ...]:
    """The q values a miner with loss v can claim so that every honest verifier accepts them.

    A verifier whose f' = v' · 2**B lies within `margin` grid steps of f = v · 2**B (strictly)
    has the same floor iff f sits at least `margin` from both ends of its bucket.  So this is
    (floor(f),) when margin <= frac(f) <= 1 − margin and floor(f) <= QMAX, else (): the miner
    does not publish that attempt.
    """
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"loss must be finite and non-negative, got {v}")
    f = v * (1 << grid_bits)
    lo = math.floor(f)
    frac = f - lo  # exact: f and lo are both float64-representable
    if lo > QMAX or not margin <= frac <= 1 - margin:
        return ()
    return (lo,)


def pack_q(qs: Sequence[int]) -> bytes:
    """mixHash: the q values as uint16 big-endian fields, zero-padded to 32 bytes."""
    if not 1 <= len(qs) <= MAX_VALUES:
        raise ValueError(f"need 1..{MAX_VALUES} q values, got {len(qs)}")
    for q in qs:
        if type(q) is not int or not 0 <= q <= QMAX:
            raise ValueError(f"q value {q!r} is not a uint16")
    body = b"".join(q.to_bytes(FIELD_BYTES, "big") for q in qs)
    return body + bytes(MIX_HASH_BYTES - len(body))


def unpack_q(mix_hash: bytes, n: int) -> tuple[int, ...]:
    """The n committed q values of a mixHash (n = QuizParams.values); raises MalformedMixHash on
    wrong length or nonzero padding."""
    if not 1 <= n <= MAX_VALUES:
        raise ValueError(f"n must be in [1, {MAX_VALUES}], got {n}")
    if not isinstance(mix_hash, bytes | bytearray) or len(mix_hash) != MIX_HASH_BYTES:
        raise MalformedMixHash(f"mixHash must be {MIX_HASH_BYTES} bytes")
    used = n * FIELD_BYTES
    if any(mix_hash[used:]):
        raise MalformedMixHash(f"mixHash padding after {n} fields is not zero")
    return tuple(
        int.from_bytes(mix_hash[i : i + FIELD_BYTES], "big") for i in range(0, used, FIELD_BYTES)
    )


def loss_hash(seal_hash: bytes, nonce: int, mix_hash: bytes) -> int:
    """ℓ̂ = int(keccak256(sealHash ‖ uint64be(nonce) ‖ mixHash))."""
    if len(mix_hash) != MIX_HASH_BYTES:
        raise MalformedMixHash(f"mixHash must be {MIX_HASH_BYTES} bytes")
    digest = keccak256(require_bytes32("seal_hash", seal_hash) + uint64be(nonce) + bytes(mix_hash))
    return int.from_bytes(digest, "big")


def target(difficulty: int) -> int:
    """2**256 // difficulty: a loss hash must be strictly below it."""
    if type(difficulty) is not int or difficulty < 1:
        raise ValueError(f"difficulty must be an int >= 1, got {difficulty!r}")
    return TWO_256 // difficulty


def meets_target(lhat: int, difficulty: int) -> bool:
    return lhat < target(difficulty)


def find_ticket(
    seal_hash: bytes, nonce: int, choices: Sequence[Sequence[int]], difficulty: int
) -> bytes | None:
    """The first mixHash among the claimable q combinations whose loss hash meets the target, or
    None.  `choices[i]` are the claimable values of committed value i (one or none)."""
    limit = target(difficulty)
    prefix = require_bytes32("seal_hash", seal_hash) + uint64be(nonce)
    for qs in itertools.product(*choices):
        mix = pack_q(qs)
        if int.from_bytes(keccak256(prefix + mix), "big") < limit:
            return mix
    return None
