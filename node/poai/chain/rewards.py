"""Block subsidy: a fixed amount to the coinbase, halving every `halving_blocks` blocks."""

from __future__ import annotations


def block_subsidy(block_number: int, subsidy_wei: int, halving_blocks: int) -> int:
    """Subsidy of block `block_number` (genesis pays none)."""
    if block_number < 0:
        raise ValueError(f"block number must be >= 0, got {block_number}")
    if halving_blocks < 1:
        raise ValueError(f"halving_blocks must be >= 1, got {halving_blocks}")
    if block_number == 0:
        return 0
    halvings = block_number // halving_blocks
    # A right shift is an exact halving with rounding down; after 256 halvings it is 0 anyway.
    return subsidy_wei >> halvings if halvings < 256 else 0
