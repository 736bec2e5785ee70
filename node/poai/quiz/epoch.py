"""Epochs: which block seeds an epoch, and the epoch key every quiz of the epoch is keyed with.

epochKey = keccak256(seed ‖ uint64be(epoch)), where seed is the hash of the last block of the
previous epoch (block 0, the genesis block, seeds both epoch 0 and epoch 1).  Nobody can know the
key of epoch e before block e*EPOCH_BLOCKS - 1 exists, so quizzes cannot be precomputed ahead.
"""

from __future__ import annotations

from poai.quiz._hash import keccak256, require_bytes32, uint64be


def epoch_index(block_number: int, epoch_blocks: int) -> int:
    """The epoch a block belongs to."""
    if block_number < 0:
        raise ValueError(f"block number must be >= 0, got {block_number}")
    if epoch_blocks < 1:
        raise ValueError(f"epoch_blocks must be >= 1, got {epoch_blocks}")
    return block_number // epoch_blocks


def seed_block_number(epoch: int, epoch_blocks: int) -> int:
    """The block whose hash seeds `epoch`: the last block of the previous epoch (genesis for 0)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epoch_blocks < 1:
        raise ValueError(f"epoch_blocks must be >= 1, got {epoch_blocks}")
    return max(0, epoch * epoch_blocks - 1)


def epoch_key(seed: bytes, epoch: int) -> bytes:
    """keccak256(seed ‖ uint64be(epoch)); seed is a 32-byte block hash."""
    return keccak256(require_bytes32("seed", seed) + uint64be(epoch))
