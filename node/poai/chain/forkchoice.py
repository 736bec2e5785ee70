"""What a head change did to the canonical chain.

py-evm picks the head by total difficulty (see poai.chain.chain) and reports the blocks it
replaced at the new blocks' heights, but not the old blocks above the new head when the heavier
branch is shorter.  The node needs all of them (their transactions go back to the pool, their
logs are reported as removed), so it walks both heads back to their common ancestor.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI


def reorg_diff(
    chain: ChainAPI,
    old_head: BlockHeaderAPI,
    new_head: BlockHeaderAPI,
    known: Mapping[bytes, BlockAPI] | None = None,
) -> tuple[list[BlockAPI], list[BlockAPI]]:
    """(removed, added) blocks, each oldest first, going from `old_head` to `new_head`.
    `known` blocks (by hash) are used as they are instead of being read back from the db."""
    known = known or {}

    def block(header: BlockHeaderAPI) -> BlockAPI:
        return known.get(header.hash) or chain.get_block_by_header(header)

    removed: list[BlockAPI] = []
    added: list[BlockAPI] = []
    a, b = old_head, new_head
    while a.hash != b.hash:
        if a.block_number >= b.block_number:
            removed.append(block(a))
            a = chain.get_block_header_by_hash(a.parent_hash)
        else:
            added.append(block(b))
            b = chain.get_block_header_by_hash(b.parent_hash)
    removed.reverse()
    added.reverse()
    return removed, added
