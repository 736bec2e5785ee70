from __future__ import annotations

import pytest
from poai.consensus.difficulty import ADJUSTMENT_DIVISOR, next_difficulty


def nd(parent: int, gap: int, target: int = 4, minimum: int = 1) -> int:
    return next_difficulty(parent, 1000, 1000 + gap, target_block_time=target,
                           min_difficulty=minimum)


def test_on_target_keeps_difficulty() -> None:
    assert nd(1000, 4) == 1000


def test_fast_blocks_raise_slow_blocks_lower() -> None:
    assert nd(1000, 1) > 1000
    assert nd(1000, 8) < 1000
    # (4 - 2) / (4 * 8) of 1000 = 62.5 -> 62
    assert nd(1000, 2) == 1062


def test_step_is_bounded() -> None:
    bound = 1000 // ADJUSTMENT_DIVISOR
    assert nd(1000, 1) <= 1000 + bound
    assert nd(1000, 10_000) == 1000 - bound


def test_minimum_difficulty() -> None:
    assert nd(5, 10_000, minimum=5) == 5
    assert nd(1, 10_000) == 1


def test_small_difficulty_can_move() -> None:
    assert nd(2, 100) == 1
    assert nd(1, 1) == 2  # fast blocks at difficulty 1 still raise it
    assert nd(1, 4) == 1


def test_converges_toward_target_rate() -> None:
    # A miner doing 100 attempts/s: expected gap = difficulty / 100 s.  Starting far too low,
    # the difficulty climbs to within a step of the 4 s target (400) and stays there.
    d = 10
    for _ in range(200):
        gap = max(1, round(d / 100))
        d = nd(d, gap)
    assert 300 <= d <= 560


@pytest.mark.parametrize("kwargs", [
    dict(target_block_time=0, min_difficulty=1),
    dict(target_block_time=4, min_difficulty=0),
])
def test_bad_settings(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        next_difficulty(10, 1, 2, **kwargs)


def test_child_must_be_later() -> None:
    with pytest.raises(ValueError, match="later"):
        next_difficulty(10, 5, 5, target_block_time=4, min_difficulty=1)
