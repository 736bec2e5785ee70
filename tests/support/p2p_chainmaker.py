"""Real sealed blocks for the P2P tests, built fast: in-process sealing at the tiny config's
difficulty 1 and timestamps spaced by the target block time in the past (so difficulty stays
flat and no block waits for the clock). Also the tampered blocks a hostile peer sends."""

from __future__ import annotations

from typing import Any

from poai.chain.builder import BlockTemplate, build_block
from poai.db.buffer import WriteBuffer
from poai.quiz.context import load_runner
from poai.quiz.miner import DEFAULT_MARGIN
from poai.quiz.reduce import claimable_values, find_ticket, pack_q

from support.poai_tiny import signed_transfers, tiny_config  # noqa: F401

MARGIN = DEFAULT_MARGIN


def seal_template(node: Any, template: BlockTemplate, ctx: Any = None) -> Any:
    """The template sealed by grinding nonces in this process (one forward pass per nonce)."""
    if ctx is None:
        with node.lock:
            ctx = node.quiz_context(template.header)
    runner = load_runner(ctx)
    bits = ctx.params.grid_bits
    for nonce in range(100_000):
        losses = runner.losses(ctx.epoch_key, template.seal_hash, nonce)
        mix = find_ticket(template.seal_hash, nonce,
                          [claimable_values(v, bits, MARGIN) for v in losses],
                          template.header.difficulty)
        if mix is not None:
            return template.seal(nonce, mix)
    raise RuntimeError("no seal found")


def make_template(node: Any, txs: list[Any] | None = None, *, parent: Any = None,
                  dt: int | None = None, coinbase: bytes = b"\x01" * 20) -> BlockTemplate:
    """A block on ``parent`` (default: head) built in a throwaway overlay of the node's db."""
    with node.lock:
        parent = parent or node.head()
        overlay = WriteBuffer(node.importer.buffer)  # discarded, never flushed
        tchain = node.chain_class(overlay)
        step = node.config.target_block_time if dt is None else dt
        return build_block(tchain, parent, coinbase, txs or [],
                           timestamp=parent.timestamp + step)


def extend(node: Any, count: int, *, coinbase: bytes = b"\x01" * 20) -> None:
    """Append ``count`` sealed blocks to the node's chain through Node.import_block."""
    for _ in range(count):
        node.import_block(seal_template(node, make_template(node, coinbase=coinbase)))


def with_mix(block: Any, qs: tuple[int, ...]) -> Any:
    return block.copy(header=block.header.copy(mix_hash=pack_q(qs)))
