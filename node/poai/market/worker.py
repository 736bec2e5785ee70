"""`poai node --market-worker`: serve InferenceMarket jobs with the node's model.

A loop over the chain's state (woken by every new head): make sure this account is a
registered worker with the stake ``max_open_jobs`` jobs lock (topped up when short); finish
its own jobs first (commit an answer to a claimed job, finalize a committed one whose challenge
window has passed, refund one whose deadline it missed, withdraw what it was paid); then claim
the oldest open job it can serve — the active snapshot, a fee at or above ``min_fee``, and at
least ``margin_blocks`` before the deadline — while fewer than ``max_open_jobs`` of its jobs
await payout. Nothing is kept between steps but what the chain says, so a restart (even a kill -9
between a claim and its commit) resumes the same job and never claims one twice.

The answer is the honest one the INFERENCE_CHECK accepts: the check's own seeded decoding rule
and routed-token counts (`poai.market.replay.answer`), so a challenger finds nothing to prove.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from poai.interfaces import NodeLike
from poai.market.book import JobBook
from poai.market.contract import (
    MARKET,
    STAKED,
    Job,
    MarketError,
    Status,
    calldata,
    pack_tokens,
)
from poai.market.loop import ChainLoop
from poai.market.sender import TxSender

log = logging.getLogger(__name__)

Answer = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # tokens, expert ids, counts


@dataclass(frozen=True)
class WorkerSettings:
    min_fee: int = 1  # wei: jobs paying less are left to others
    margin_blocks: int = 4  # claim only with at least this many blocks before the deadline
    max_open_jobs: int = 4  # claimed or awaiting payout at once (each locks the worker stake)
    poll_s: float = 1.0


class MarketWorker(ChainLoop):
    """One worker account on one node; ``start()`` runs it in a daemon thread."""

    name = "worker"

    def __init__(self, node: NodeLike, key: bytes, answer: Callable[[Job], Answer],
                 settings: WorkerSettings | None = None, book: JobBook | None = None) -> None:
        self.settings = settings or WorkerSettings()
        super().__init__(node, self.settings.poll_s)
        self.book = book or JobBook(node)
        self.answer = answer
        self.sender = TxSender(node, key, self._stop)
        self.address = self.sender.address
        self._since = 1  # every job before this one is settled (or not ours to touch)
        self.done = 0  # jobs committed by this process

    # ---- one step: at most one transaction; True when there may be more to do at once
    def step(self) -> bool:
        head = self.book.refresh()
        if not self._ensure_worker():
            return False
        p = self.book.params()
        jobs = self.book.jobs(since=self._since)
        settled_prefix = True
        for job in jobs:
            terminal = job.status in (Status.FINALIZED, Status.REFUNDED, Status.FRAUD)
            if settled_prefix and (terminal or (job.status == Status.OPEN and job.deadline < head)):
                self._since = job.job_id + 1
            else:
                settled_prefix = False
        mine = [j for j in jobs if j.worker == self.address]
        for job in mine:  # a claimed job first: its deadline runs
            if job.status == Status.CLAIMED:
                if head >= job.deadline:
                    return self._send(MARKET, "refund", job.job_id, what=f"refund job {job.job_id}")
                return self._commit(job)
        open_jobs = 0
        for job in mine:
            if job.status == Status.COMMITTED:
                open_jobs += 1
                if head > job.committed_at + p.challenge_window:
                    return self._send(MARKET, "finalize", job.job_id,
                                      what=f"finalize job {job.job_id}")
        pending = int(self.book.view("pendingOf", "0x" + self.address.hex()))
        if pending > 0:
            self._send(MARKET, "withdraw", what=f"withdraw {pending} wei")
            return True
        if open_jobs >= self.settings.max_open_jobs or not self._stake_for_one_more():
            return False
        active = int(self.book.view("activeSnapshot"))
        for job in jobs:
            if job.status != Status.OPEN or job.prompt is None:
                continue
            if job.snapshot_id != active or job.fee < self.settings.min_fee:
                continue
            if job.deadline - head < self.settings.margin_blocks:
                continue
            log.info("claiming job %d (%d wei, deadline #%d)", job.job_id, job.fee, job.deadline)
            try:
                return self._send(MARKET, "claimJob", job.job_id, what=f"claim job {job.job_id}")
            except MarketError as exc:  # taken meanwhile, expired: the next head tells
                log.info("job %d not claimed: %s", job.job_id, exc)
                return False
        return False

    def _send(self, contract: str, fn: str, *args: object, value: int = 0, what: str) -> bool:
        address = self.book.address if contract == MARKET else self.node.contracts[contract]
        ok = self.sender.send(address, calldata(fn, *args, contract=contract), value=value,
                              what=what)
        if ok:
            log.info("market worker: %s", what)
        return ok

    def _stake_for_one_more(self) -> bool:
        """Unlocked stake for one more claim, topped up from the balance when short."""
        me = "0x" + self.address.hex()
        staked = self.node.contracts[STAKED]
        balance = int(self.book.view("balanceOf", me, contract=STAKED, address=staked))
        locked = int(self.book.view("lockedOf", me, contract=STAKED, address=staked))
        short = self.book.params().min_worker_stake - (balance - locked)
        if short <= 0:
            return True
        self._send(STAKED, "deposit", value=short, what=f"stake {short} wei more")
        return False

    def _ensure_worker(self) -> bool:
        """Registered, with the stake one job locks unlocked; False when it cannot be."""
        me = "0x" + self.address.hex()
        registered, banned, _open = self.book.view("workers", me)
        if banned:
            self.warn_once(f"0x{self.address.hex()} is banned from the market (slashed); "
                            "the worker stops serving")
            return False
        if registered:
            return True
        need = self.book.params().min_worker_stake * self.settings.max_open_jobs
        staked = self.node.contracts[STAKED]
        balance = int(self.book.view("balanceOf", me, contract=STAKED, address=staked))
        locked = int(self.book.view("lockedOf", me, contract=STAKED, address=staked))
        if balance - locked < need:
            deposit = need - (balance - locked)
            self._send(STAKED, "deposit", value=deposit, what=f"stake {deposit} wei")
        self._send(MARKET, "registerWorker", what="register as a market worker")
        return False

    def _commit(self, job: Job) -> bool:
        if job.prompt is None:
            raise MarketError(f"job {job.job_id}: its JobPosted log is not on this chain")
        log.info("job %d: generating (%d bytes of prompt, up to %d tokens)", job.job_id,
                 len(job.prompt), job.max_tokens)
        tokens, expert_ids, counts = self.answer(job)
        ok = self._send(MARKET, "commitResult", job.job_id, pack_tokens(tokens),
                        list(expert_ids), list(counts),
                        what=f"commit job {job.job_id} ({len(tokens)} tokens)")
        if ok:
            self.done += 1
        return ok
