"""Quiz miner: one single-threaded worker process per core grinding disjoint nonce sequences.

Why processes: two torch threads in one process collapse under load on this kind of machine,
while one-thread processes scale; the consensus setting is one thread per process anyway.
Workers are started with the "spawn" context (torch's OpenMP state and any threads of the parent
do not survive fork safely), once per Miner, and kept across mine() calls.  Each worker loads the
model and dataset of a QuizContext once (cached by manifest hash and dataset), then for a job
(seal hash, difficulty) tries nonces base + w, base + w + W, base + w + 2W, … (mod 2**64), W
workers, w its index: the sequences are disjoint, and the random base keeps two mine() calls for
the same header from repeating work.

Which tickets a forward pass may claim.  Verifiers accept a committed value q_i only when it is
exactly floor(v'_i · 2**B) of their own v'_i (reduce.py says why: no free tickets, half the
forger's odds per value).  Honest verifiers differ from the miner by last-bit noise (measured by
bench/quiz_agreement.py over thread counts, batch layouts and CPU instruction sets, unless a
near-tied router decision flips: see below), so a value of v · 2**B sitting within that noise of
an integer could floor differently on another node.  The miner therefore claims an attempt only
when every one of its K·G values sits at least `margin` grid steps inside its bucket
(reduce.claimable_values).  DEFAULT_MARGIN = 1/64 step of the 2**-10 grid (1.5e-5 nats) is ~11x
the largest divergence measured on a 16-token segment value (1.4e-6 nats = 0.0015 steps over
2,100 quizzes; 0 claims rejected at margins down to 1/256; docs/BENCHMARKS.md "Quiz soundness at
internet scale").  A forward pass yields one ticket with probability (1 − 2·margin)**(K·G) (0.60
for 16 values) and none otherwise: the honest miner hashes at most one ticket per pass, and the
margin costs every honest miner the same share of passes (the difficulty absorbs it) and buys
blocks every honest node accepts.  A miner who ignores the margin gets a ticket from every pass,
1/0.60 = 1.66x the tickets (the previous floor-or-ceiling rule gave such a miner 2**4 / 9.4 =
1.70x), at the risk of the rejections the margin avoids.  Why B = 10 and not a finer grid: a
forger's odds per value shrink with the grid step (bench/quiz_attacks.py, p_guess_by_grid_bits),
but the margin in nats is fixed by the honest divergence, so a finer grid needs more steps of
margin, which costs honest miners passes and widens the margin-free edge; B = 10 with a
1/64-step margin meets the soundness goal with a ~11x safety factor.

Claim margins cannot cover a router near-tie: when a token's k-th and (k+1)-th router logits are
closer than honest last-bit noise, another node may route it to a different expert and the loss
moves by a large part of a step (measured once in 8,000 samples: 0.47 steps between AVX-512 and
plain kernels).  So a worker that finds a ticket recomputes the attempt once more with its router
logits (one extra forward pass per found seal, ~0.6% of the work at the devnet difficulty) and
publishes the seal only if every relevant routing decision clears the routing margin `tau`
(poai.quiz.routing: the rule, the measurements behind DEFAULT_TAU and the share of seals it
drops); otherwise it carries on with its nonce sequence.  The guard pass must also reproduce the
mined losses bit for bit (same process, same settings), or the seal is dropped.

An earlier version re-verified every found seal in checker processes under the CPU's other
instruction sets.  It was removed once the guard existed: over the agreement benchmark's 2,000+
quizzes no seal that passes the guard was rejected by any instruction set, thread count or batch
layout (docs/BENCHMARKS.md "Quiz"), so the checkers caught nothing more, while costing two
processes, a forward pass per checker per found seal and latency before publishing; and they
could only cover instruction sets the miner's own CPU has, where the guard covers any honest
setting whose router-logit noise stays below tau.

A seal found just before mine()'s timeout is not lost: while a worker is running the guard pass
of a ticket of the current job, mine() waits for its verdict past the deadline (cancel() still
returns at once: a new head makes the seal stale); and a seal that arrives after mine() returned
is kept and returned by the next mine() call for the same context, seal hash and difficulty.

Workers ignore SIGINT (the parent blocks it while starting them, so not even their start-up
prints a traceback on Ctrl-C); the parent stops them, and closes the queues whose semaphores
the resource tracker would otherwise report as leaked, in close() or at interpreter exit.

The worker spends its time in the model: per attempt it does ~2K+1 keccak hashes to choose
records and salts (records are decrypted once and cached), one forward pass, then at most one
keccak hash for its ticket; bench/quiz_mining.py measures the share (mining_efficiency).
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
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

from poai.quiz._hash import UINT64_MAX, require_bytes32
from poai.quiz._procs import ignore_sigint, sigint_blocked
from poai.quiz.context import QuizContext, load_runner
from poai.quiz.loss import sample_losses
from poai.quiz.reduce import claimable_values, find_ticket, target
from poai.quiz.routing import DEFAULT_TAU, attempt_routing

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 1 / 64  # grid steps; see module docstring
_POLL_S = 0.02  # mine() wakes this often to notice cancel(): well inside the 100 ms promise
_HASHRATE_WINDOW_S = 10.0
_GUARD_GRACE_S = 30.0  # past the deadline, wait at most this long for a guard pass in flight
_LATE_JOBS = 16  # finished jobs whose late seals a later mine() call may still return


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
    tau: float


@dataclass
class _Shared:
    """Counters shared with the workers (lock-free: each worker writes only its own slot)."""

    current: Synchronized[int]  # the job workers should grind; 0 = none
    counts: SynchronizedArray[int]  # attempts (forward passes of the grinding loop)
    model_ns: SynchronizedArray[int]
    busy_ns: SynchronizedArray[int]
    guarding: SynchronizedArray[int]  # job id whose found ticket is in its guard pass, or 0
    guard_drops: SynchronizedArray[int]  # tickets the routing guard did not publish


def _worker_main(index: int, jobs: Any, results: Any, shared: _Shared) -> None:
    """Worker process: wait for a job, grind it until it is found or superseded, repeat."""
    ignore_sigint()
    import torch

    # deferred: a worker process loads transformers itself, after its priority is set
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
        if shared.current.value != job.job_id:
            continue
        try:
            _grind(job, shared, index, results)
        except Exception as exc:  # report, keep serving: the next context may be fine
            log.exception("quiz worker %d failed", index)
            results.put(("error", index, job.job_id, f"{type(exc).__name__}: {exc}"))
        finally:
            shared.guarding[index] = 0


def _grind(job: _Job, shared: _Shared, index: int, results: Any) -> None:
    """Grind `job` until it is superseded or a seal passes the routing guard (put on
    `results`; the worker then waits for the next job)."""
    runner = load_runner(job.ctx)
    params = job.ctx.params
    epoch_key = job.ctx.epoch_key
    grid_bits, salt_len, margin = params.grid_bits, params.salt_len, job.margin
    segments = params.segments
    nonce = job.start
    clock = time.perf_counter_ns
    current, counts = shared.current, shared.counts
    while current.value == job.job_id:
        t0 = clock()
        attempt = runner.attempt(epoch_key, job.seal_hash, nonce)
        t1 = clock()
        losses = sample_losses(runner.model, attempt.batch, salt_len, segments)
        t2 = clock()
        choices = [claimable_values(v, grid_bits, margin) for v in losses]
        mix = find_ticket(job.seal_hash, nonce, choices, job.difficulty)
        # Accounting for the "time in the model" share (bench/quiz_mining.py)
        counts[index] += 1
        shared.model_ns[index] += t2 - t1
        shared.busy_ns[index] += clock() - t0
        if mix is not None:
            shared.guarding[index] = job.job_id
            again, routing = attempt_routing(runner.model, attempt.batch, salt_len, segments)
            if again != losses:
                log.warning("guard pass of nonce %d gave other losses (%r vs %r): dropped",
                            nonce, again, losses)
                shared.guard_drops[index] += 1
            elif not routing.publishable(job.tau):
                log.info("nonce %d not published: routing gap %.3g < tau %.3g (layer %d, "
                         "sample %d, token %d)", nonce, routing.gap, job.tau, routing.layer,
                         routing.sample, routing.token)
                shared.guard_drops[index] += 1
            else:
                results.put(("found", index, job.job_id, (nonce, mix, tuple(losses))))
                return  # the caller clears `guarding` after the put
            shared.guarding[index] = 0
        nonce = (nonce + job.stride) & UINT64_MAX


class MinerError(RuntimeError):
    """A worker failed (bad assets, crashed process): mining cannot go on with this context."""


class _Workers:
    """The worker processes and their queues; stop() is also the Miner's exit finalizer, so it
    must not refer to the Miner."""

    def __init__(self, ctx: Any, n: int) -> None:
        self.results: Any = ctx.Queue()
        self.shared = _Shared(
            ctx.Value("q", 0, lock=False), *(ctx.Array("q", n, lock=False) for _ in range(5))
        )
        self.jobs: list[Any] = []
        self.procs: list[Any] = []
        with sigint_blocked():
            for i in range(n):
                jobs = ctx.Queue()
                p = ctx.Process(target=_worker_main, args=(i, jobs, self.results, self.shared),
                                name=f"poai-quiz-miner-{i}", daemon=True)
                p.start()
                self.jobs.append(jobs)
                self.procs.append(p)

    def stop(self) -> None:
        self.shared.current.value = 0
        for q in self.jobs:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        # Workers hold no state worth saving: a short grace period, then terminate.
        deadline = time.monotonic() + 2.0
        for p in self.procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        # Close the queues now (flushing their feeder threads), so their semaphores are
        # released here and not reported as leaked by the resource tracker at exit.
        for q in (*self.jobs, self.results):
            q.close()
            q.join_thread()
        self.procs.clear()
        self.jobs.clear()


class Miner:
    """One single-threaded worker process per core (configurable), grinding quiz nonces."""

    def __init__(
        self, workers: int | None = None, margin: float = DEFAULT_MARGIN,
        tau: float = DEFAULT_TAU,
    ) -> None:
        """`margin`: grid steps kept from a boundary when claiming q; `tau`: the routing margin
        a found seal must clear to be published (poai.quiz.routing; 0 disables the guard)."""
        n = (os.cpu_count() or 1) if workers is None else workers
        if n < 1:
            raise ValueError(f"workers must be >= 1, got {n}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        if not 0 <= tau < 1:
            raise ValueError(f"tau must be in [0, 1), got {tau}")
        self.workers = n
        self.margin = margin
        self.tau = tau
        self._mp = mp.get_context("spawn")
        self._w: _Workers | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._job_id = 0
        # Jobs that ended (timeout/cancel) whose late seals the next call may return.
        self._late: dict[int, tuple[_Job, int]] = {}
        self._cancel = threading.Event()
        self._mine_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._rate: deque[tuple[float, int]] = deque()
        self._closed = False
        self.late_seals = 0  # seals returned by a later mine() call than the one that found them

    # -- lifecycle ---------------------------------------------------------------------------

    def _ensure_started(self) -> _Workers:
        with self._state_lock:
            if self._closed:
                raise MinerError("miner is closed")
            if self._w is None:
                # No waiting for the workers to boot (importing torch takes seconds): they pick
                # up the newest job when ready, and mine() stays cancellable meanwhile.
                self._w = _Workers(self._mp, self.workers)
                self._finalizer = weakref.finalize(self, self._w.stop)
            return self._w

    def _check_alive(self, w: _Workers) -> None:
        dead = [p.name for p in w.procs if not p.is_alive()]
        if dead:
            raise MinerError(f"quiz worker process(es) died: {', '.join(dead)}")

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        with self._state_lock:
            self._closed = True
            self.cancel()
            if self._finalizer is not None:
                self._finalizer()  # runs _Workers.stop once

    def __enter__(self) -> Miner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- figures -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Make a running mine() return None within 100 ms (thread-safe)."""
        self._cancel.set()

    def total_attempts(self) -> int:
        w = self._w
        return 0 if w is None else int(sum(w.shared.counts[:]))

    def guard_drops(self) -> int:
        """Tickets found but not published by the routing guard, since the miner started."""
        w = self._w
        return 0 if w is None else int(sum(w.shared.guard_drops[:]))

    def model_time_share(self) -> float:
        """Share of the workers' mining time spent in the forward pass (since start)."""
        w = self._w
        if w is None:
            return 0.0
        busy = sum(w.shared.busy_ns[:])
        return sum(w.shared.model_ns[:]) / busy if busy else 0.0

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

    # -- mining ------------------------------------------------------------------------------

    def mine(
        self, ctx: QuizContext, seal_hash: bytes, difficulty: int, timeout: float | None = None
    ) -> Seal | None:
        """Grind nonces until a seal meets `difficulty`; None when cancelled or timed out.

        A cancel() issued before mine() starts is forgotten: cancel stops the mining in flight.
        A seal whose guard pass is running at the deadline is still returned (the call overruns
        by about one forward pass); one that arrives later is returned by the next call for the
        same (ctx, seal_hash, difficulty).
        """
        require_bytes32("seal_hash", seal_hash)
        target(difficulty)  # validates difficulty
        if not isinstance(ctx, QuizContext):
            raise TypeError("ctx must be a QuizContext")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mine_lock:
            self._cancel.clear()
            w = self._ensure_started()
            self._job_id += 1
            job_id = self._job_id
            base = secrets.randbits(64)
            start_attempts = self.total_attempts()
            job = _Job(job_id, ctx, seal_hash, difficulty, 0, self.workers, self.margin,
                       self.tau)
            w.shared.current.value = job_id
            for i, q in enumerate(w.jobs):
                q.put(dataclasses.replace(job, start=(base + i) & UINT64_MAX))
            seal: Seal | None = None
            try:
                seal = self._wait(w, job, start_attempts, deadline)
                return seal
            finally:
                w.shared.current.value = 0  # workers drop the job at their next attempt
                if seal is None:
                    self._late[job_id] = (job, start_attempts)
                    while len(self._late) > _LATE_JOBS:
                        del self._late[min(self._late)]

    def _late_seal(self, job: _Job, msg_job: int, payload: Any) -> Seal | None:
        """A seal of an earlier job that ended before it arrived, if it fits `job`."""
        late = self._late.pop(msg_job, None)
        if late is None:
            return None
        old, old_start = late
        if (old.ctx, old.seal_hash, old.difficulty) != (job.ctx, job.seal_hash, job.difficulty):
            return None
        nonce, mix, losses = payload
        log.info("returning seal nonce=%d found after the previous mine() call ended", nonce)
        self.late_seals += 1
        return Seal(nonce, mix, tuple(losses), self.total_attempts() - old_start)

    def _wait(
        self, w: _Workers, job: _Job, start_attempts: int, deadline: float | None
    ) -> Seal | None:
        job_id = job.job_id
        last_alive_check = time.monotonic()
        grace_end: float | None = None
        while True:
            if self._cancel.is_set():
                return None
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                if job_id not in w.shared.guarding[:]:
                    # one last look: a result put just before its worker cleared the flag
                    try:
                        msg = w.results.get(timeout=_POLL_S)
                    except queue.Empty:
                        return None
                    seal = self._handle(w, job, start_attempts, msg)
                    if seal is not None:
                        return seal
                    continue
                if grace_end is None:
                    grace_end = now + _GUARD_GRACE_S
                elif now >= grace_end:
                    return None
            wait = _POLL_S if deadline is None or grace_end is not None else min(
                _POLL_S, max(0.0, deadline - now))
            try:
                msg = w.results.get(timeout=wait)
            except queue.Empty:
                self._sample_rate()
                if now - last_alive_check > 0.5:
                    last_alive_check = now
                    self._check_alive(w)
                continue
            seal = self._handle(w, job, start_attempts, msg)
            if seal is not None:
                return seal

    def _handle(self, w: _Workers, job: _Job, start_attempts: int, msg: Any) -> Seal | None:
        kind, worker, msg_job, payload = msg
        if msg_job != job.job_id:
            return self._late_seal(job, msg_job, payload) if kind == "found" else None
        if kind == "error":
            raise MinerError(f"quiz worker {worker}: {payload}")
        nonce, mix, losses = payload
        self._sample_rate()
        return Seal(nonce, mix, tuple(losses), self.total_attempts() - start_attempts)
