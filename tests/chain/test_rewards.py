from __future__ import annotations

import pytest
from poai.chain.rewards import block_subsidy

FIVE = 5 * 10**18


def test_halving_schedule() -> None:
    assert block_subsidy(0, FIVE, 100) == 0
    assert block_subsidy(1, FIVE, 100) == FIVE
    assert block_subsidy(99, FIVE, 100) == FIVE
    assert block_subsidy(100, FIVE, 100) == FIVE // 2
    assert block_subsidy(250, FIVE, 100) == FIVE // 4
    assert block_subsidy(100 * 300, FIVE, 100) == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        block_subsidy(-1, FIVE, 100)
    with pytest.raises(ValueError):
        block_subsidy(1, FIVE, 0)
