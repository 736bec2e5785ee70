"""Difficulty retarget toward a target block time.

Each block moves the difficulty by (target - Δ) / (target · ADJUSTMENT_DIVISOR) of the parent's,
where Δ is the parent→child timestamp gap, bounded to ±1/ADJUSTMENT_DIVISOR per block and never
below the chain's minimum.  Expected attempts per block equal the difficulty (the seal accepts
ℓ̂ < 2^256 / difficulty), so the difficulty tracks the network's attempts/s × target time.
Integer arithmetic only: every node must compute the same value.
"""

from __future__ import annotations

# ±12.5% per block at most: fast enough to follow a miner joining or leaving within a few
# dozen blocks, slow enough that one lucky or unlucky block barely moves it.
ADJUSTMENT_DIVISOR = 8


def next_difficulty(
    parent_difficulty: int,
    parent_timestamp: int,
    timestamp: int,
    *,
    target_block_time: int,
    min_difficulty: int,
) -> int:
    """The difficulty a child with `timestamp` must carry after a parent with the given fields."""
    if target_block_time < 1:
        raise ValueError(f"target_block_time must be >= 1 s, got {target_block_time}")
    if min_difficulty < 1:
        raise ValueError(f"min_difficulty must be >= 1, got {min_difficulty}")
    if parent_difficulty < 1:
        raise ValueError(f"parent difficulty must be >= 1, got {parent_difficulty}")
    if timestamp <= parent_timestamp:
        raise ValueError("child timestamp must be later than its parent's")
    gap = timestamp - parent_timestamp
    # At least one unit either way, so a tiny difficulty can still move.
    step_bound = max(1, parent_difficulty // ADJUSTMENT_DIVISOR)
    # Python's floor division rounds negative changes away from zero; that is deterministic,
    # which is all consensus needs.
    change = parent_difficulty * (target_block_time - gap) // (
        target_block_time * ADJUSTMENT_DIVISOR
    )
    # Move at least one unit in the indicated direction, or a small difficulty could never rise
    # (timestamps have 1 s resolution, so the gap of fast blocks is stuck at 1).
    if gap < target_block_time:
        change = max(1, change)
    elif gap > target_block_time:
        change = min(-1, change)
    change = max(-step_bound, min(step_bound, change))
    return max(min_difficulty, parent_difficulty + change)
