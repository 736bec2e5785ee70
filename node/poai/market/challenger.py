"""`poai node --market-challenger`: check every committed market result, challenge a fraud.

On every new head, each job that is committed, inside its challenge window, not challenged yet
and not this account's own is replayed locally with the same INFERENCE_CHECK the chain runs
(`poai.market.replay.check`). A fault (a token the decoding rule does not give, a wrong end, or
expert counts that are not the routed ones) is challenged at once with the bond: the contract
runs the precompile and, as the verdict is the same, slashes the worker — 10% of the stake and
the bond come back to this account, which withdraws them. Verdicts are kept per (job, output
hash) for the process's life; after a restart the open windows are simply checked again. A
challenge the chain refuses (its simulation reverts, or it fails when mined) is not sent again
by this process.
"""

from __future__ import annotations

from collections.abc import Callable

from poai.interfaces import NodeLike
from poai.market.book import JobBook
from poai.market.contract import (
    ZERO_ADDRESS,
    Job,
    MarketError,
    Status,
    calldata,
    pack_tokens,
)
from poai.market.loop import ChainLoop
from poai.market.sender import TxSender

Verdict = tuple[int, int]  # (fault, index): fault 0 = the result holds


class MarketChallenger(ChainLoop):
    name = "challenger"

    def __init__(self, node: NodeLike, key: bytes, check: Callable[[Job], Verdict],
                 *, book: JobBook | None = None, poll_s: float = 1.0,
                 check_gas: Callable[[Job], int] | None = None) -> None:
        super().__init__(node, poll_s)
        self.book = book or JobBook(node)
        self.check = check
        self.check_gas = check_gas
        self.sender = TxSender(node, key, self._stop)
        self.address = self.sender.address
        self._verdicts: dict[tuple[int, bytes], Verdict] = {}
        self._since = 1
        self._given_up: set[int] = set()  # challenges the chain refused: never resent
        self.challenged: list[int] = []  # job ids challenged by this process

    def step(self) -> bool:
        head = self.book.refresh()
        window = self.book.params().challenge_window
        settled_prefix = True
        for job in self.book.jobs(since=self._since):
            open_window = job.status == Status.COMMITTED and head <= job.committed_at + window
            waiting = job.status in (Status.OPEN, Status.CLAIMED) or open_window
            if settled_prefix and not waiting:
                self._since = job.job_id + 1
            else:
                settled_prefix = False
            if not open_window or job.worker == self.address or \
                    job.challenger != ZERO_ADDRESS or job.job_id in self._given_up:
                continue
            if job.prompt is None or not job.output_ok:
                self.log.warning("job %d: its prompt or output log is missing: cannot check it",
                            job.job_id)
                continue
            key = (job.job_id, job.output_hash)
            verdict = self._verdicts.get(key)
            if verdict is None:
                verdict = self.check(job)
                self._verdicts[key] = verdict
                self.log.info("job %d checked: %s", job.job_id,
                         "holds" if verdict[0] == 0 else f"fault {verdict[0]} at {verdict[1]}")
            if verdict[0] != 0:
                return self._challenge(job, verdict)
        pending = int(self.book.view("pendingOf", "0x" + self.address.hex()))
        if pending > 0:
            return self.sender.send(self.book.address, calldata("withdraw"),
                                    what=f"withdraw {pending} wei")
        return False

    def _challenge(self, job: Job, verdict: Verdict) -> bool:
        assert job.prompt is not None and job.output is not None
        bond = self.book.params().challenge_bond
        self.log.warning("job %d: worker 0x%s committed a fraud (fault %d at token %d): "
                         "challenging", job.job_id, job.worker.hex(), verdict[0], verdict[1])
        data = calldata("challenge", job.job_id, job.prompt, pack_tokens(job.output))
        gas = None if self.check_gas is None else self.check_gas(job)
        try:
            ok = self.sender.send(self.book.address, data, value=bond, gas=gas,
                                  what=f"challenge job {job.job_id}")
        except MarketError as exc:
            self.log.warning("job %d not challenged: %s", job.job_id, exc)
            self._given_up.add(job.job_id)
            return False
        if ok:
            self.challenged.append(job.job_id)
        else:
            self._given_up.add(job.job_id)
        return ok
