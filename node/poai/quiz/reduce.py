"""From per-sample losses to the seal: quantisation, mixHash packing, loss hash, target check.

- q_j = floor(v_j · 2**B).  v_j is a float32 loss; multiplying by a power of two is exact in
  float64, so the floor is exact too.
- mixHash = q_1 ‖ … ‖ q_K as uint64 big-endian fields, then zero bytes up to 32 bytes (K <= 4).
  Nonzero padding is malformed: a header has exactly one valid encoding of its q values.
- ℓ̂ = int(keccak256(sealHash ‖ uint64be(nonce) ‖ mixHash)), valid when ℓ̂ < 2**256 // difficulty.
- A claimed q_j is accepted when it is floor(v'_j · 2**B) or ceil(v'_j · 2**B) of the verifier's own
  v'_j; equivalently |v'_j · 2**B − q_j| < 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from poai.quiz._hash import UINT64_MAX, keccak256, require_bytes32, uint64be
from poai.quiz.params import FIELD_BYTES, MAX_K, MIX_HASH_BYTES

TWO_256 = 1 << 256


class MalformedMixHash(ValueError):
    """The mixHash is not a canonical packing of K uint64 values."""


def quantize(v: float, grid_bits: int) -> int:
    """q = floor(v · 2**B) for a finite, non-negative loss v."""
    if not math.isfinite(v):
        raise ValueError(f"loss is not finite: {v}")
    if v < 0:
        raise ValueError(f"loss is negative: {v}")
    q = math.floor(v * (1 << grid_bits))
    if q > UINT64_MAX:
        raise ValueError(f"quantised loss {q} does not fit in a uint64")
    return q


def accepted_values(v: float, grid_bits: int) -> tuple[int, ...]:
    """The q values a verifier whose own loss is v accepts: floor and ceiling of v · 2**B."""
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"loss must be finite and non-negative, got {v}")
    f = v * (1 << grid_bits)
    lo, hi = math.floor(f), math.ceil(f)
    return (lo,) if lo == hi else (lo, hi)


def is_accepted(q: int, v: float, grid_bits: int) -> bool:
    """Whether a claimed q_j is the floor or the ceiling of the verifier's own v · 2**B."""
    return q in accepted_values(v, grid_bits)


def claimable_values(v: float, grid_bits: int, margin: float) -> tuple[int, ...]:
    """The q values a miner with loss v can claim so that every honest verifier accepts them.

    A verifier whose f' = v' · 2**B lies within `margin` grid steps of f = v · 2**B accepts q iff
    |f' − q| < 1, for all such f' iff |f − q| < 1 − margin.  So floor(f) is claimable unless f
    sits within `margin` below the next integer, and ceil(f) unless f sits within `margin` above
    floor(f) (an integral f has only itself).
    """
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"loss must be finite and non-negative, got {v}")
    f = v * (1 << grid_bits)
    lo = math.floor(f)
    frac = f - lo  # exact: f and lo are both float64-representable
    if frac == 0:
        return (lo,)
    out: list[int] = []
    if frac < 1 - margin:
        out.append(lo)
    if frac > margin:
        out.append(lo + 1)
    return tuple(out)


def pack_q(qs: Sequence[int]) -> bytes:
    """mixHash: the q values as uint64 big-endian fields, zero-padded to 32 bytes."""
    if not 1 <= len(qs) <= MAX_K:
        raise ValueError(f"need 1..{MAX_K} q values, got {len(qs)}")
    body = b"".join(uint64be(q) for q in qs)
    return body + bytes(MIX_HASH_BYTES - len(body))


def unpack_q(mix_hash: bytes, k: int) -> tuple[int, ...]:
    """The K q values of a mixHash; raises MalformedMixHash on wrong length or nonzero padding."""
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be in [1, {MAX_K}], got {k}")
    if not isinstance(mix_hash, bytes | bytearray) or len(mix_hash) != MIX_HASH_BYTES:
        raise MalformedMixHash(f"mixHash must be {MIX_HASH_BYTES} bytes")
    used = k * FIELD_BYTES
    if any(mix_hash[used:]):
        raise MalformedMixHash(f"mixHash padding after {k} fields is not zero")
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
    """The first mixHash (in floor-before-ceiling order) among the claimable q combinations whose
    loss hash meets the target, or None.  `choices[j]` are the claimable values of sample j."""
    limit = target(difficulty)
    prefix = require_bytes32("seal_hash", seal_hash) + uint64be(nonce)
    for qs in itertools.product(*choices):
        mix = pack_q(qs)
        if int.from_bytes(keccak256(prefix + mix), "big") < limit:
            return mix
    return None
