"""The model work of the market services: an honest answer to a job, and the local check.

Both are the check engineer's functions, so the worker's claim is what the chain accepts and the
challenger challenges only what the chain will find to be a fraud:
- answer: `poai.inference.claims.generate_claim` — the inference engine generating under the
  job's snapshot with the chain's decoding rule (greedy, or the seeded `draw`) and counting the
  routed tokens of every position it feeds, the INFERENCE_CHECK's definition;
- check: `check_claim` (`poai.consensus.inference_check`), the function the precompile runs
  inside the EVM, on the model of the job's snapshot as the node's own chain names it
  (`poai.chain.inference.job_snapshot` / `SnapshotModels`, shared with the precompile).

The chain is read under ``node.lock``; the forward passes run outside it.
"""

from __future__ import annotations

import threading

from poai.api.service import node_resolver
from poai.chain.inference import JobSnapshot, job_snapshot, snapshot_models_of
from poai.consensus.inference_check import Decoding, JobClaim, check_claim, gas_for
from poai.inference.claims import generate_claim
from poai.inference.engine import InferenceEngine
from poai.interfaces import NodeLike
from poai.market.contract import Job, MarketError

CHALLENGE_GAS_MARGIN = 800_000  # the challenge's own work around the precompile's gas
EXPERT_CACHE = 64


def decoding_of(job: Job) -> Decoding:
    return Decoding(job.max_tokens, job.temperature_milli, job.top_p_micro, job.seed)


class Replayer:
    """The worker's engine and the challenger's check on one node (one job at a time)."""

    def __init__(self, node: NodeLike) -> None:
        self.node = node
        self.engine = InferenceEngine(node_resolver(node), expert_cache=EXPERT_CACHE)
        self._lock = threading.Lock()

    def snapshot(self, snapshot_id: int) -> JobSnapshot:
        with self.node.lock:
            return job_snapshot(self.node.chain, snapshot_id)

    def answer(self, job: Job) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(output tokens, expert ids, routed-token counts) the check accepts."""
        if job.prompt is None:
            raise MarketError(f"job {job.job_id}: its prompt is not in the chain's logs")
        snap = self.snapshot(job.snapshot_id)
        with self._lock:
            claim = generate_claim(self.engine, snap, job.prompt, decoding_of(job))
        return claim.output, claim.expert_ids, claim.counts

    def claim(self, job: Job) -> JobClaim:
        if job.prompt is None or job.output is None:
            raise MarketError(f"job {job.job_id}: prompt or output not found in the chain's logs")
        return JobClaim(job.snapshot_id, job.prompt, decoding_of(job), job.output,
                        job.expert_ids, job.counts)

    def check(self, job: Job) -> tuple[int, int]:
        """(fault, index) of the INFERENCE_CHECK on the job's committed result."""
        claim = self.claim(job)
        snap = self.snapshot(job.snapshot_id)
        models = snapshot_models_of(self.node.chain)
        with self._lock:
            verdict = check_claim(models.model(snap), snap.expert_ids_by_slot, claim)
        return int(verdict.fault), int(verdict.index)

    def check_gas(self, job: Job) -> int:
        """Gas for the challenge transaction: the precompile's and the contract's own."""
        return gas_for(self.claim(job)) + CHALLENGE_GAS_MARGIN
