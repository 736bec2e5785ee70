"""What `poai node --dev` adds to a node, as anvil and `hardhat node` give it: a movable clock,
blocks mined on request (evm_mine, cheats) or on every transaction (automine), queued state
cheats, snapshots and impersonated accounts.

`DevMode` holds that state and the requests; the producer's dev loop
(`poai.producer.BlockProducer`) mines the blocks: every block, cheats included, is a real
quiz-sealed block built, sealed and stored like any other (poai.chain.devchain).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from eth.abc import BlockAPI, BlockHeaderAPI

from poai.chain.devchain import Cheat

# How long an RPC request waits for its block: a dev chain's difficulty is low, but the miner's
# workers load the model on the first block (seconds on a busy host).
MINE_TIMEOUT_S = 300.0


class DevModeError(ValueError):
    """A dev request the node refuses (bad timestamp, unknown snapshot...): one line."""


@dataclass
class MineRequest:
    """A block wanted now: `timestamp` (None: the dev clock's; `spacing`: the parent's plus
    that many seconds), or only the cheats up to `cheat_seq` carried by some block
    (`block=False`: no block of its own needed)."""

    timestamp: int | None = None
    spacing: int | None = None
    cheat_seq: int = 0
    block: bool = True
    done: Future[BlockAPI] = field(default_factory=Future)


class DevMode:
    def __init__(self, *, automine: bool, interval: float) -> None:
        """`automine`: a block for every transaction that arrives (anvil's default);
        `interval`: seconds between blocks mined without a request (0: none)."""
        self._cond = threading.Condition()
        self.offset = 0.0  # seconds the dev clock is ahead of the wall clock
        self.next_timestamp: int | None = None
        self.automine = automine
        self.interval = interval
        self._cheats: list[tuple[int, Cheat]] = []
        self._cheat_seq = 0
        self.applied_seq = 0  # every cheat up to this one is in a stored block
        self._requests: deque[MineRequest] = deque()
        self.impersonated: set[bytes] = set()
        self.snapshots: dict[int, bytes] = {}  # id -> block hash
        self._next_snapshot = 0

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        return time.time() + self.offset

    def increase_time(self, seconds: int) -> int:
        """Move the clock forward; returns the total offset in seconds (anvil's answer)."""
        with self._cond:
            self.offset += seconds
            return int(self.offset)

    def set_next_timestamp(self, timestamp: int, head: BlockHeaderAPI) -> None:
        if timestamp <= head.timestamp:
            raise DevModeError(f"Timestamp error: {timestamp} is lower than or equal to "
                               f"previous block's timestamp {head.timestamp}")
        with self._cond:
            self.next_timestamp = timestamp

    def timestamp_for(self, parent: BlockHeaderAPI, explicit: int | None = None) -> int:
        """The next block's timestamp: `explicit`, else evm_setNextBlockTimestamp's, else the
        dev clock's second (and always after the parent's).  The clock moves up to it, so
        the block is never in the future of the node's own clock."""
        with self._cond:
            ts = explicit if explicit is not None else self.next_timestamp
            if ts is not None and ts <= parent.timestamp:
                raise DevModeError(f"Timestamp error: {ts} is lower than or equal to "
                                   f"previous block's timestamp {parent.timestamp}")
            if ts is None:
                ts = max(parent.timestamp + 1, int(self.now()))
            if ts > self.now():
                self.offset = ts - time.time()
            return ts

    def block_stored(self, block: BlockAPI, cheat_seq: int) -> None:
        """A block built with the cheats up to `cheat_seq` is the head: they leave the queue,
        and a timestamp set by evm_setNextBlockTimestamp is used up."""
        with self._cond:
            self.next_timestamp = None
            self.applied_seq = max(self.applied_seq, cheat_seq)
            self._cheats = [(s, c) for s, c in self._cheats if s > cheat_seq]
            self._cond.notify_all()

    # ------------------------------------------------------------------ cheats and requests
    def queue_cheats(self, cheats: list[Cheat]) -> int:
        with self._cond:
            for cheat in cheats:
                self._cheat_seq += 1
                self._cheats.append((self._cheat_seq, cheat))
            return self._cheat_seq

    def pending_cheats(self) -> tuple[list[Cheat], int]:
        """The queued cheats (kept until a block carrying them is stored) and the last seq."""
        with self._cond:
            return [c for _, c in self._cheats], (self._cheats[-1][0] if self._cheats else 0)

    def request(self, req: MineRequest) -> Future[BlockAPI]:
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()
        return req.done

    def next_request(self) -> MineRequest | None:
        with self._cond:
            return self._requests.popleft() if self._requests else None

    def fail_requests(self, exc: BaseException) -> None:
        with self._cond:
            requests, self._requests = list(self._requests), deque()
        for req in requests:
            if not req.done.done():
                req.done.set_exception(exc)

    def wait(self, timeout: float) -> None:
        """Sleep until a request comes (or `timeout`)."""
        with self._cond:
            if not self._requests:
                self._cond.wait(timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ snapshots
    def take_snapshot(self, head: BlockHeaderAPI) -> int:
        with self._cond:
            sid = self._next_snapshot
            self._next_snapshot += 1
            self.snapshots[sid] = bytes(head.hash)
            return sid

    def pop_snapshot(self, sid: int) -> bytes | None:
        """The block hash saved as `sid`; it and every later snapshot are used up (anvil)."""
        with self._cond:
            block_hash = self.snapshots.get(sid)
            if block_hash is not None:
                self.snapshots = {k: v for k, v in self.snapshots.items() if k < sid}
            return block_hash
