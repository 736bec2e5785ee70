"""Quiz miner: one single-threaded worker process per core grinding disjoint nonce sequences.

Why processes: two torch threads in one process collapse under load on this kind of machine,
while one-thread processes scale; the consensus setting is one thread per process anyway.
Workers are started with the "spawn" context (torch's OpenMP state and any threads of the parent
do not survive fork safely), once per Miner, and kept across mine() calls.  Each worker loads the
model and dataset of a QuizContext once (cached by manifest hash and dataset), then for a job
(seal hash, difficulty) tries nonces base + w, base + w + W, base + w + 2W, … (mod 2**64), W
workers, w its index: the sequences are disjoint, and the random base keeps two mine() calls for
the same header from repeating work.

Which tickets a forward pass may claim.  Verifiers accept q_j when it is the floor or the ceiling
of their own v'_j · 2**B, i.e. when |v'_j · 2**B − q_j| < 1.  Honest verifiers differ from the
miner by last-bit noise (measured by bench/quiz_agreement.py: thread counts, batch layout, CPU
instruction sets; ≤ 5e-7 nats usually, up to ~2e-5 if a near-tied router decision flips, i.e.
≤ 0.1 grid step at B = 12).  A value of v · 2**B that sits just above an integer k could come out
just below k on another node, whose floor/ceiling would then be {k−1, k}: claiming k+1 would be
rejected there.  So the miner claims only values q with |v · 2**B − q| < 1 − margin, where the
margin (default 1/8 grid step: 40x the largest last-bit divergence measured over 10,000
comparisons, ≤ 0.003 steps; router near-ties are the exception, see below) bounds how far another
honest node can be: floor(v · 2**B) unless v · 2**B is within `margin` below the next integer,
ceil(v · 2**B) unless it is within `margin` above the floor.  A forward pass therefore yields
between 1 and 2**K tickets (on average (2 − 2·margin)**K), the same for every honest miner; the
margin costs hashrate equally for everyone (difficulty absorbs it) and buys blocks that every
honest node accepts.

Claim margins cannot cover a near-tied router decision that flips between instruction sets
(measured once in 8,000 samples: 0.47 steps between AVX-512 and plain kernels), so a found seal
is verified once more under every other instruction set this CPU offers (poai.quiz.crosscheck,
one forward pass per checker per found seal) and dropped if any rejects it; the worker that
found it then carries on with its nonce sequence.

The worker spends its time in the model: per attempt it does ~2K+1 keccak hashes to choose
records and salts (records are decrypted once and cached), one forward pass, then at most 2**K
keccak hashes for the tickets; bench/quiz_mining.py measures the share (mining_efficiency).
cancel() sets an event that mine() polls every few milliseconds, so mine() returns within 100 ms
whatever the workers are doing; workers drop the job at their next attempt (one forward pass).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

from poai.quiz._hash import UINT64_MAX, require_bytes32
from poai.quiz.context import QuizContext, load_runner
from poai.quiz.crosscheck import CrossChecker, cpu_capabilities, own_capability
from poai.quiz.loss import sample_losses
from poai.quiz.reduce import claimable_values, find_ticket, target

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 1 / 8  # grid steps; see module docstring
_POLL_S = 0.02  # mine() wakes this often to notice cancel(): well inside the 100 ms promise
_HASHRATE_WINDOW_S = 10.0


@dataclass(frozen=True)
class Seal:
    """A found seal: the header's nonce and mixHash, the miner's own losses, attempts spent."""

    nonce: int
    mix_hash: bytes
    losses: tuple[float, ...]
    attempts: int


@dataclass(frozen=True)
class _Job:
    job_id: int
    ctx: QuizContext
    seal_hash: bytes
    difficulty: int
    start: int
    stride: int
    margin: float


def _worker_main(
    index: int,
    jobs: Any,
    results: Any,
    current: Synchronized[int],
    counts: SynchronizedArray[int],
    model_ns: SynchronizedArray[int],
    busy_ns: SynchronizedArray[int],
) -> None:
    """Worker process: wait for a job, grind it until it is found or superseded, repeat."""
    import torch

    from poai.model.config import set_consensus_threads

    set_consensus_threads()
    torch.set_num_interop_threads(1)
    while True:
        job: _Job | None = jobs.get()
        # Only the newest job matters: drain anything queued behind it.
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                break
        if job is None:
            return
        if current.value != job.job_id:
            continue
        try:
            found = _grind(job, current, counts, model_ns, busy_ns, index)
        except Exception as exc:  # report, keep serving: the next context may be fine
            log.exception("quiz worker %d failed", index)
            results.put(("error", index, job.job_id, f"{type(exc).__name__}: {exc}"))
            continue
        if found is not None:
            results.put(("found", index, job.job_id, found))


def _grind(
    job: _Job,
    current: Synchronized[int],
    counts: SynchronizedArray[int],
    model_ns: SynchronizedArray[int],
    busy_ns: SynchronizedArray[int],
    index: int,
) -> tuple[int, bytes, tuple[float, ...]] | None:
    runner = load_runner(job.ctx)
    params = job.ctx.params
    epoch_key = job.ctx.epoch_key
    grid_bits, salt_len, margin = params.grid_bits, params.salt_len, job.margin
    nonce = job.start
    clock = time.perf_counter_ns
    while current.value == job.job_id:
        t0 = clock()
        attempt = runner.attempt(epoch_key, job.seal_hash, nonce)
        t1 = clock()
        losses = sample_losses(runner.model, attempt.batch, salt_len)
        t2 = clock()
        choices = [claimable_values(v, grid_bits, margin) for v in losses]
        mix = find_ticket(job.seal_hash, nonce, choices, job.difficulty)
        # Accounting for the "time in the model" share (bench/quiz_mining.py)
        counts[index] += 1
        model_ns[index] += t2 - t1
        busy_ns[index] += clock() - t0
        if mix is not None:
            return nonce, mix, tuple(losses)
        nonce = (nonce + job.stride) & UINT64_MAX
    return None


class MinerError(RuntimeError):
    """A worker failed (bad assets, crashed process): mining cannot go on with this context."""


class Miner:
    """One single-threaded worker process per core (configurable), grinding quiz nonces."""

    def __init__(
        self, workers: int | None = None, margin: float = DEFAULT_MARGIN,
        cross_check: Sequence[str] | None = None,
    ) -> None:
        """`cross_check`: CPU instruction sets (ATEN_CPU_CAPABILITY values) whose verifier
        must accept a seal before mine() returns it; None = every other one this CPU has,
        () = none (see poai.quiz.crosscheck)."""
        n = (os.cpu_count() or 1) if workers is None else workers
        if n < 1:
            raise ValueError(f"workers must be >= 1, got {n}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        self.workers = n
        self.margin = margin
        self._mp = mp.get_context("spawn")
        self._procs: list[Any] = []
        self._jobs: list[Any] = []
        self._results: Any = None
        self._current: Synchronized[int] | None = None
        self._counts: SynchronizedArray[int] | None = None
        self._model_ns: SynchronizedArray[int] | None = None
        self._busy_ns: SynchronizedArray[int] | None = None
        self._job_id = 0
        self._cancel = threading.Event()
        self._mine_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._rate: deque[tuple[float, int]] = deque()
        self._closed = False
        self._cross_check_arg = None if cross_check is None else tuple(cross_check)
        self._checker: CrossChecker | None = None
        self.cross_check_rejections = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        with self._state_lock:
            if self._closed:
                raise MinerError("miner is closed")
            if self._procs:
                return
            caps = self._cross_check_arg
            if caps is None:
                own = own_capability()
                caps = tuple(c for c in cpu_capabilities() if c != own)
            if caps:
                self._checker = CrossChecker(caps)
                self._checker.start()  # boots alongside the workers
            self._results = self._mp.Queue()
            self._current = self._mp.Value("q", 0, lock=False)
            self._counts = self._mp.Array("q", self.workers, lock=False)
            self._model_ns = self._mp.Array("q", self.workers, lock=False)
            self._busy_ns = self._mp.Array("q", self.workers, lock=False)
            for i in range(self.workers):
                jobs = self._mp.Queue()
                p = self._mp.Process(
                    target=_worker_main,
                    args=(i, jobs, self._results, self._current, self._counts,
                          self._model_ns, self._busy_ns),
                    name=f"poai-quiz-miner-{i}",
                    daemon=True,
                )
                p.start()
                self._jobs.append(jobs)
                self._procs.append(p)
            # No waiting for the workers to boot (importing torch takes seconds): they pick up
            # the newest job when ready, and mine() stays cancellable meanwhile.

    def _check_alive(self) -> None:
        dead = [p.name for p in self._procs if not p.is_alive()]
        if dead:
            raise MinerError(f"quiz worker process(es) died: {', '.join(dead)}")

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        with self._state_lock:
            self._closed = True
            self.cancel()
            if self._current is not None:
                self._current.value = 0
            for q in self._jobs:
                q.put(None)
            # Workers hold no state worth saving: a short grace period, then terminate.
            deadline = time.monotonic() + 2.0
            for p in self._procs:
                p.join(timeout=max(0.0, deadline - time.monotonic()))
            for p in self._procs:
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
            self._procs.clear()
            self._jobs.clear()
            if self._checker is not None:
                self._checker.close()
                self._checker = None

    def __enter__(self) -> Miner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mining ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Make a running mine() return None within 100 ms (thread-safe)."""
        self._cancel.set()

    def total_attempts(self) -> int:
        counts = self._counts
        return 0 if counts is None else int(sum(counts[:]))

    def model_time_share(self) -> float:
        """Share of the workers' mining time spent in the forward pass (since start)."""
        if self._model_ns is None or self._busy_ns is None:
            return 0.0
        busy = sum(self._busy_ns[:])
        return sum(self._model_ns[:]) / busy if busy else 0.0

    def hashrate(self) -> float:
        """Attempts (forward passes) per second over the last ~10 s of mining, all workers."""
        self._sample_rate()
        with self._state_lock:
            if len(self._rate) < 2:
                return 0.0
            (t0, a0), (t1, a1) = self._rate[0], self._rate[-1]
        return (a1 - a0) / (t1 - t0) if t1 > t0 else 0.0

    def _sample_rate(self) -> None:
        now = time.monotonic()
        total = self.total_attempts()
        with self._state_lock:
            if self._rate and now - self._rate[-1][0] < 0.05:
                return
            self._rate.append((now, total))
            while len(self._rate) > 2 and now - self._rate[1][0] > _HASHRATE_WINDOW_S:
                self._rate.popleft()

    def mine(
        self, ctx: QuizContext, seal_hash: bytes, difficulty: int, timeout: float | None = None
    ) -> Seal | None:
        """Grind nonces until a seal meets `difficulty`; None when cancelled or timed out.

        A cancel() issued before mine() starts is forgotten: cancel stops the mining in flight.
        """
        require_bytes32("seal_hash", seal_hash)
        target(difficulty)  # validates difficulty
        if not isinstance(ctx, QuizContext):
            raise TypeError("ctx must be a QuizContext")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mine_lock:
            self._cancel.clear()
            self._ensure_started()
            assert self._current is not None
            self._job_id += 1
            job_id = self._job_id
            base = secrets.randbits(64)
            start_attempts = self.total_attempts()
            self._current.value = job_id
            template = _Job(job_id, ctx, seal_hash, difficulty, 0, self.workers, self.margin)
            for i, q in enumerate(self._jobs):
                q.put(dataclasses.replace(template, start=(base + i) & UINT64_MAX))
            try:
                return self._wait(template, start_attempts, deadline)
            finally:
                self._current.value = 0  # workers drop the job at their next attempt

    def _wait(self, job: _Job, start_attempts: int, deadline: float | None) -> Seal | None:
        job_id = job.job_id
        last_alive_check = time.monotonic()

        def stop() -> bool:
            return self._cancel.is_set() or (deadline is not None and time.monotonic() >= deadline)

        while True:
            if self._cancel.is_set():
                return None
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            try:
                msg = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                self._sample_rate()
                if now - last_alive_check > 0.5:
                    last_alive_check = now
                    self._check_alive()
                continue
            kind, worker, msg_job, payload = msg
            if msg_job != job_id:
                continue  # a late result of an earlier job
            if kind == "error":
                raise MinerError(f"quiz worker {worker}: {payload}")
            if kind == "found":
                nonce, mix, losses = payload
                if self._checker is not None:
                    reasons = self._checker.check(job.ctx, job.seal_hash, nonce, mix,
                                                  job.difficulty, stop)
                    if reasons is None:
                        return None
                    if reasons:
                        self.cross_check_rejections += 1
                        log.warning("dropping seal nonce=%d: %s", nonce, "; ".join(reasons))
                        # that worker stopped at the seal: let it go on with its sequence
                        self._jobs[worker].put(dataclasses.replace(
                            job, start=(nonce + job.stride) & UINT64_MAX))
                        continue
                self._sample_rate()
                return Seal(nonce, mix, tuple(losses), self.total_attempts() - start_attempts)
