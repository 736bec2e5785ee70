"""Parallel seal verification: seals of different blocks do not depend on chain state, so a
batch (e.g. during sync) is verified across single-threaded worker processes, one per core.

Each worker receives chunks of a few seals of one context and verifies a chunk in ONE forward
pass (`poai.quiz.seal.verify_seals`: ~25% less compute per seal than one pass per seal; the
docstring there says why batching is consensus-safe); the result still names each seal."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from poai.quiz._procs import ignore_sigint, sigint_blocked
from poai.quiz.context import QuizContext, load_runner
from poai.quiz.seal import InvalidSeal, SealFields, verify_seals

SealItem = tuple[QuizContext, bytes, int, bytes, int]  # ctx, seal_hash, nonce, mix_hash, difficulty

# Seals per forward pass: 4 seals (16 rows of the devnet quiz) already get most of the batching
# gain (measured: 13.2 ms for one seal, 10.4 ms/seal at 2, 9.9 at 8), and small chunks keep a
# streaming consumer (sync) fed early and let both workers share a short list.
DEFAULT_CHUNK = 4


# Worker niceness: seal checks run ahead of the node's own thread (import, RPC), which is the
# critical path of a sync; a lower priority lets the scheduler serve that thread first.
WORKER_NICE = 5


def _init_worker() -> None:
    ignore_sigint()
    try:
        os.nice(WORKER_NICE)
    except OSError:  # not permitted here: run at normal priority
        pass
    import torch

    # deferred: a worker process loads transformers itself, after its priority is set
    from poai.model.config import set_consensus_threads

    set_consensus_threads()
    torch.set_num_interop_threads(1)


def _verify_group(ctx: QuizContext, seals: list[SealFields]) -> list[InvalidSeal | None]:
    return verify_seals(ctx, seals)


def _load(ctx: QuizContext, hold: float) -> int:
    load_runner(ctx)
    time.sleep(hold)  # stay busy so the next warm-up task goes to another worker
    return os.getpid()


def group_by_context(
    items: Sequence[SealItem], chunk: int
) -> list[tuple[QuizContext, list[SealFields], int]]:
    """Contiguous runs of items with the same context, cut to at most `chunk` seals:
    (ctx, seals, index of the first item)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    groups: list[tuple[QuizContext, list[SealFields], int]] = []
    for i, (ctx, sh, nonce, mix_hash, difficulty) in enumerate(items):
        if not groups or groups[-1][0] != ctx or len(groups[-1][1]) >= chunk:
            groups.append((ctx, [], i))
        groups[-1][1].append((sh, nonce, mix_hash, difficulty))
    return groups


class ParallelVerifier:
    """verify_seal over a list of seals in worker processes ("spawn"; started on first use and
    kept, each caching the model and dataset of the contexts it has seen).  Workers ignore
    SIGINT: Ctrl-C reaches the parent, which shuts the pool down."""

    def __init__(self, workers: int | None = None, chunk: int = DEFAULT_CHUNK) -> None:
        n = (os.cpu_count() or 1) if workers is None else workers
        if n < 1:
            raise ValueError(f"workers must be >= 1, got {n}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.workers = n
        self.chunk = chunk
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._pool

    def submit(self, ctx: QuizContext, seals: Sequence[SealFields]
               ) -> Future[list[InvalidSeal | None]]:
        """Verify seals of one context in one worker, in one forward pass; the future gives one
        result per seal (None or the InvalidSeal).  Chunks are served first come, first served."""
        with sigint_blocked():  # the pool may start a worker process while submitting
            return self._executor().submit(_verify_group, ctx, list(seals))

    def verify_many(self, items: Sequence[SealItem]) -> list[InvalidSeal | None]:
        """One result per item, in order: None for a valid seal, the InvalidSeal otherwise.
        Items are sent in chunks of up to `chunk` seals of the same context.  Errors that are
        not about the seal (missing blob, bad dataset key) propagate."""
        futures = [(self.submit(ctx, seals), start)
                   for ctx, seals, start in group_by_context(items, self.chunk)]
        results: list[InvalidSeal | None] = [None] * len(items)
        try:
            for fut, start in futures:
                part = fut.result()
                results[start : start + len(part)] = part
        finally:
            for fut, _ in futures:
                fut.cancel()
        return results

    def warm_up(self, ctx: QuizContext, timeout: float = 120.0) -> None:
        """Start every worker and load `ctx`'s model and dataset in each (before timing, or
        before a sync), within `timeout` seconds."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        hold = 0.05
        while len(seen) < self.workers and time.monotonic() < deadline:
            with sigint_blocked():
                futs = [self._executor().submit(_load, ctx, hold) for _ in range(self.workers)]
            seen.update(f.result(timeout=max(1.0, deadline - time.monotonic())) for f in futs)
            hold = min(hold * 2, 1.0)
        if len(seen) < self.workers:
            raise TimeoutError(f"only {len(seen)} of {self.workers} workers warmed up")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ParallelVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
