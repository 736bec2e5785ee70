"""Sync benchmark: blocks/s imported by a fresh node from a peer, with full verification.

A serving node gets a chain of --blocks sealed blocks (the bundled devnet genesis model, its
difficulty lowered to 1 and block timestamps spaced by the target time so it stays there); a
fresh node then range-syncs it over libp2p on loopback, verifying every seal (ParallelVerifier,
one worker per core) and every state transition. The seal-verification limit is
cores / (time of one verification); the goal is a ratio >= 0.8. Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/sync.py --blocks 200
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from poai.chain.builder import BlockTemplate, build_block
from poai.chain.config import load_genesis_config
from poai.db.buffer import WriteBuffer
from poai.quiz.context import load_runner
from poai.quiz.reduce import claimable_values, find_ticket


def bench_config(difficulty: int = 1) -> Any:
    cfg = load_genesis_config(None)
    return dataclasses.replace(cfg, initial_difficulty=difficulty, min_difficulty=1)


def make_template(node: Any, parent: Any = None) -> BlockTemplate:
    with node.lock:
        parent = parent or node.head()
        tchain = node.chain_class(WriteBuffer(node._buffer))  # throwaway overlay
        return build_block(tchain, parent, b"\x01" * 20, [],
                           timestamp=parent.timestamp + node.config.target_block_time)


def seal(node: Any, t: BlockTemplate) -> Any:
    with node.lock:
        ctx = node.quiz_context(t.header)
    runner = load_runner(ctx)
    for nonce in range(1_000_000):
        losses = runner.losses(ctx.epoch_key, t.seal_hash, nonce)
        mix = find_ticket(t.seal_hash, nonce,
                          [claimable_values(v, ctx.params.grid_bits, 0.125) for v in losses],
                          t.header.difficulty)
        if mix is not None:
            return t.seal(nonce, mix)
    raise RuntimeError("no seal")


def extend(node: Any, count: int) -> None:
    for _ in range(count):
        node.import_block(seal(node, make_template(node)))


def one_verification_seconds(node: Any, samples: int = 20) -> float:
    """Median wall time of verify_seal on this chain's blocks (model already loaded)."""
    from poai.consensus.seal_hash import seal_hash
    from poai.quiz.seal import verify_seal

    times = []
    with node.lock:
        headers = [node.chain.get_canonical_block_header_by_number(n)
                   for n in range(1, min(samples, node.head().block_number) + 1)]
        ctxs = [node.quiz_context(h) for h in headers]
    verify_seal(ctxs[0], seal_hash(headers[0]), int.from_bytes(headers[0].nonce, "big"),
                headers[0].mix_hash, headers[0].difficulty)  # warm-up
    for h, ctx in zip(headers, ctxs, strict=True):
        t0 = time.perf_counter()
        verify_seal(ctx, seal_hash(h), int.from_bytes(h.nonce, "big"), h.mix_hash, h.difficulty)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=200)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    if args.blocks < 1 or args.blocks > 5000:
        p.error("--blocks must be in 1..5000")
    logging.basicConfig(level=logging.WARNING)
    from poai.node import Node
    from poai.p2p.host import HostConfig
    from poai.p2p.service import P2PService
    from poai.quiz.verifier import ParallelVerifier

    cfg = bench_config()
    with tempfile.TemporaryDirectory() as tmp:
        a = Node(Path(tmp) / "a", cfg)
        a.start()
        t0 = time.monotonic()
        extend(a, args.blocks)
        build_s = time.monotonic() - t0
        verify_s = one_verification_seconds(a)
        sa = P2PService(a, HostConfig(datadir=Path(tmp) / "a"), sync=False)
        sa.start()
        verifier = ParallelVerifier(args.workers)
        with a.lock:  # start the workers and load the model in them before timing
            h = a.chain.get_canonical_block_header_by_number(1)
            from poai.consensus.seal_hash import seal_hash

            item = (a.quiz_context(h), seal_hash(h), int.from_bytes(h.nonce, "big"),
                    bytes(h.mix_hash), h.difficulty)
        verifier.verify_many([item] * (2 * args.workers))
        b = Node(Path(tmp) / "b", cfg)
        b.start()
        sb = P2PService(b, HostConfig(datadir=Path(tmp) / "b",
                                      static_peers=sa.host.full_addrs()), verifier=verifier)
        t0 = time.monotonic()
        sb.start()
        deadline = t0 + 1800
        while b.head().block_number < args.blocks and time.monotonic() < deadline:
            time.sleep(0.02)
        sync_s = time.monotonic() - t0
        synced = b.head().block_number
        ok = b.head().hash == a.head().hash
        sb.stop()
        sa.stop()
        verifier.close()
        b.stop()
        a.stop()
    rate = synced / sync_s
    limit = args.workers / verify_s
    print(json.dumps({
        "bench": "sync",
        "blocks": synced,
        "same_head": ok,
        "sync_seconds": round(sync_s, 2),
        "blocks_per_s": round(rate, 2),
        "one_verification_ms": round(verify_s * 1000, 2),
        "verifier_workers": args.workers,
        "seal_verification_limit_blocks_per_s": round(limit, 2),
        "ratio_to_limit": round(rate / limit, 3),
        "goal_ratio": 0.8,
        "chain_build_seconds": round(build_s, 2),
        "model": "bundled devnet genesis (difficulty 1)",
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
