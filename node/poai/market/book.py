"""The market's jobs read from the node's own chain: contract views joined with event data.

`JobBook` scans canonical blocks for InferenceMarket logs (a header's bloom says whether a
block can hold one, so most blocks cost one header read) and keeps, per job id, the prompt and
decoding parameters of its `JobPosted`, the tokens of its `ResultCommitted` and the verdict of
its `ChallengeSettled`. Everything else — status, worker, deadline, stake — is read from the
contract at the head each time, so nothing here can go stale: the book is a cache of calldata
the contract no longer keeps, each entry checked against the hash the contract does keep. A
reorg that replaces a scanned block empties the book and it rescans from genesis.

Call the book's methods with ``node.lock`` held or from a thread that may take it (they take
it themselves; it is re-entrant).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from eth.abc import StateAPI
from eth_bloom.bloom import BloomFilter
from eth_typing import BlockNumber
from eth_utils.crypto import keccak

from poai.governance.reader import GovernanceReadError, call_view
from poai.interfaces import NodeLike
from poai.market.contract import MARKET, Job, MarketError, Status, decode_event, unpack_tokens

SCAN_CHUNK = 1024  # blocks read per hold of the node's lock


@dataclass(frozen=True)
class MarketParams:
    min_worker_stake: int
    challenge_bond: int
    challenge_window: int
    royalty_bps: int
    max_job_blocks: int


class JobBook:
    def __init__(self, node: NodeLike) -> None:
        address = node.contracts.get(MARKET) if node.contracts else None
        if address is None:
            raise MarketError("this chain has no InferenceMarket in genesis")
        self.node = node
        self.address = bytes(address)
        self._lock = threading.Lock()
        self._scanned: list[bytes] = []  # canonical hashes of blocks 0..n scanned
        self._posted: dict[int, tuple[bytes, int]] = {}  # job -> (prompt, block)
        self._outputs: dict[int, bytes] = {}  # job -> packed tokens
        self._verdicts: dict[int, tuple[int, int]] = {}
        self._params: MarketParams | None = None

    # ---- chain reads
    def state(self) -> StateAPI:
        return self.node.state_at_head()

    def view(self, fn: str, *args: Any, contract: str = MARKET, address: bytes | None = None,
             state: StateAPI | None = None) -> Any:
        """One view of the market (or of ``contract`` at ``address``) at the head; a single
        output is returned bare."""
        with self.node.lock:
            out = call_view(state or self.state(), address or self.address, contract, fn, *args)
        return out[0] if len(out) == 1 else out

    def params(self) -> MarketParams:
        if self._params is None:
            self._params = MarketParams(
                int(self.view("minWorkerStake")), int(self.view("challengeBond")),
                int(self.view("challengeWindow")), int(self.view("royaltyBps")),
                int(self.view("maxJobBlocks")))
        return self._params

    def refresh(self) -> int:
        """Reads the logs of the canonical blocks not scanned yet; returns the head number.
        A long first scan lets go of the node's lock every SCAN_CHUNK blocks."""
        while True:
            with self.node.lock, self._lock:
                chain = self.node.chain
                head = self.node.head()
                n = len(self._scanned)
                if n and (n - 1 > head.block_number or
                          chain.get_canonical_block_hash(BlockNumber(n - 1)) != self._scanned[-1]):
                    self._reset()  # a reorg (or a shorter chain): rescan everything
                    n = 0
                last = min(head.block_number, n + SCAN_CHUNK - 1)
                for number in range(n, last + 1):
                    header = chain.get_canonical_block_header_by_number(BlockNumber(number))
                    if self.address in BloomFilter(int(header.bloom)):
                        self._scan_block(chain, header)
                    self._scanned.append(bytes(header.hash))
                if last >= head.block_number:
                    return int(head.block_number)

    def _reset(self) -> None:
        self._scanned.clear()
        self._posted.clear()
        self._outputs.clear()
        self._verdicts.clear()

    def _scan_block(self, chain: Any, header: Any) -> None:
        block = chain.get_block_by_header(header)
        for receipt in block.get_receipts(chain.chaindb):
            for lg in receipt.logs:
                if bytes(lg.address) != self.address:
                    continue
                topics = [t.to_bytes(32, "big") if isinstance(t, int) else bytes(t)
                          for t in lg.topics]
                decoded = decode_event(topics, bytes(lg.data))
                if decoded is None:
                    continue
                name, args = decoded
                job_id = int(args.get("jobId", 0))
                if name == "JobPosted":
                    self._posted[job_id] = (bytes(args["prompt"]), int(header.block_number))
                elif name == "ResultCommitted":
                    self._outputs[job_id] = bytes(args["outputTokens"])
                elif name == "ChallengeSettled":
                    self._verdicts[job_id] = (int(args["fault"]), int(args["index"]))

    # ---- jobs
    def job_count(self) -> int:
        return int(self.view("jobCount"))

    def job(self, job_id: int, state: StateAPI | None = None) -> Job:
        """The job at the head (raises MarketError for an unknown id), with its prompt and output
        when their logs hash to what the contract stored."""
        try:
            record = self.view("job", job_id, state=state)
        except GovernanceReadError as exc:
            raise MarketError(f"no job {job_id} on this chain") from exc
        job = Job.from_view(job_id, record)
        with self._lock:
            posted = self._posted.get(job_id)
            packed = self._outputs.get(job_id)
            job.verdict = self._verdicts.get(job_id)
        if posted is not None and keccak(posted[0]) == job.prompt_hash:
            job.prompt, job.posted_block = posted
        if packed is not None and job.status >= Status.COMMITTED and \
                keccak(packed) == job.output_hash:
            job.output = unpack_tokens(packed)
        return job

    def jobs(self, *, statuses: set[Status] | None = None, since: int = 1,
             limit: int | None = None) -> list[Job]:
        """Jobs ``since``.. (oldest first), read in one head state."""
        with self.node.lock:
            state = self.state()
            count = int(call_view(state, self.address, MARKET, "jobCount")[0])
            out = []
            for job_id in range(max(1, since), count + 1):
                job = self.job(job_id, state=state)
                if statuses is None or job.status in statuses:
                    out.append(job)
                    if limit is not None and len(out) >= limit:
                        break
            return out
