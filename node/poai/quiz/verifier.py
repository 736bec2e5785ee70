"""Parallel seal verification: seals of different blocks do not depend on chain state, so a
batch (e.g. during sync) is verified across single-threaded worker processes, one per core."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor

from poai.quiz._procs import ignore_sigint, sigint_blocked
from poai.quiz.context import QuizContext
from poai.quiz.seal import InvalidSeal, verify_seal

SealItem = tuple[QuizContext, bytes, int, bytes, int]  # ctx, seal_hash, nonce, mix_hash, difficulty


def _init_worker() -> None:
    ignore_sigint()
    import torch

    from poai.model.config import set_consensus_threads

    set_consensus_threads()
    torch.set_num_interop_threads(1)


def _verify_one(item: SealItem) -> InvalidSeal | None:
    ctx, seal_hash, nonce, mix_hash, difficulty = item
    try:
        verify_seal(ctx, seal_hash, nonce, mix_hash, difficulty)
    except InvalidSeal as exc:
        return exc
    return None


class ParallelVerifier:
    """verify_seal over a list of seals in worker processes ("spawn"; started on first use and
    kept, each caching the model and dataset of the contexts it has seen).  Workers ignore
    SIGINT: Ctrl-C reaches the parent, which shuts the pool down."""

    def __init__(self, workers: int | None = None) -> None:
        n = (os.cpu_count() or 1) if workers is None else workers
        if n < 1:
            raise ValueError(f"workers must be >= 1, got {n}")
        self.workers = n
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._pool

    def verify_many(self, items: list[SealItem]) -> list[InvalidSeal | None]:
        """One result per item, in order: None for a valid seal, the InvalidSeal otherwise.
        Errors that are not about the seal (missing blob, bad dataset key) propagate."""
        if not items:
            return []
        # Contiguous chunks: a worker that got an epoch's context keeps reusing its cache.
        chunk = max(1, len(items) // (self.workers * 4))
        with sigint_blocked():  # the pool starts its worker processes while submitting
            results = self._executor().map(_verify_one, items, chunksize=chunk)
        return list(results)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ParallelVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
