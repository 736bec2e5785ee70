"""Block production: drafting the next block from the pool, the mining loop, and committing
a sealed block through the importer.

Build a template from the txpool on the head (under the lock), compute its seal hash, let the
quiz `Miner` grind nonces (without the lock), then store the sealed block (under the lock)
unless the head moved meanwhile; a new head from the importer cancels the miner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas

from poai.chain.builder import BlockDraft, BlockTemplate
from poai.chain.chain import PoaiChain
from poai.chain.config import ChainConfig
from poai.chain.devchain import impersonation, store_cheats
from poai.chain.governed import (
    GovernanceReadError,
    MissingBlobs,
    MissingDataset,
    SeedStateUnavailable,
)
from poai.db.buffer import WriteBuffer
from poai.db.leveldb import StorageError
from poai.devmode import DevMode, DevModeError, MineRequest
from poai.importer import BlockImporter, ImportResult
from poai.interfaces import ChainLock, Network, TxPoolLike
from poai.quiz.context import QuizContext
from poai.quiz.miner import Miner
from poai.quiz.reduce import unpack_q

log = logging.getLogger("poai.node")

LAST_SEALS = 64
# A new head cancels the miner; a cancel that lands just before mine() starts is lost (the
# Miner forgets it), so mine() also returns every few seconds to re-check the head.  Not
# much shorter: a seal found near the deadline is dropped if its cross-check is still running.
_MINE_SLICE_S = 5.0
# While the miner waits for the next timestamp second it drafts the next block from the pool,
# a few transactions at a time and only when no RPC request has come for a moment (one
# interpreter serves both, so drafting during a burst of sends would slow their acceptance).
# At the second, only the transactions that came since and the block's finalisation are left.
DRAFT_STEP_TXS = 16
DRAFT_IDLE_S = 0.02
# At the second, while a burst of transactions is still arriving, the block waits for it to end
# (at most this long): one block then takes the burst whole, instead of building on a part of
# it at half speed (the same interpreter serves both) and leaving the rest for the next second.
# Other RPC traffic (polling, calls) never delays a block.  Half a slot: long enough for a
# 500-transaction burst on a slow 2-core host (docs/BENCHMARKS.md, "Moved from code comments").
BUSY_DEFER_S = 0.5


@dataclass(frozen=True)
class SealRecord:
    number: int
    block_hash: bytes
    difficulty: int
    nonce: int
    q: tuple[int, ...]
    losses: tuple[float, ...]
    attempts: int
    seconds: float


@dataclass
class MiningStats:
    mining: bool = False
    workers: int = 0
    hashrate: float = 0.0  # quiz attempts (forward passes) per second, recent window
    blocks_mined: int = 0
    attempts: int = 0
    last_seals: list[SealRecord] = field(default_factory=list)  # newest first


@dataclass
class _OverlayDraft:
    """A BlockDraft being filled on its own write overlay (ahead of the block's time)."""

    draft: BlockDraft
    overlay: WriteBuffer
    head_version: int
    parent_hash: bytes


@dataclass(frozen=True)
class SealingWork:
    """What the miner seals: a finished BlockTemplate, its writes, and its epoch's quiz."""

    template: BlockTemplate
    overlay: WriteBuffer
    head_version: int
    quiz: QuizContext


class BlockProducer:
    def __init__(
        self,
        config: ChainConfig,
        chain_class: type[PoaiChain],
        importer: BlockImporter,
        txpool: TxPoolLike,
        *,
        coinbase: bytes,
        mine: bool,
        miner_workers: int,
        network: Callable[[], Network | None],
        dev: DevMode | None = None,
    ) -> None:
        """`dev`: a dev node's controls (`poai node --dev`): the mining thread then also runs
        without `mine` and mines on request, on transactions or on an interval (DevMode)."""
        self.config = config
        self.dev = dev
        self.coinbase = coinbase
        self.mine = mine
        self.miner_workers = miner_workers
        self.txpool = txpool
        self.lock: ChainLock = importer.lock
        self._chain_class = chain_class
        self._importer = importer
        self._network = network
        self._stop = threading.Event()
        self._miner: Miner | None = None
        self._mining_thread: threading.Thread | None = None
        self._seals: deque[SealRecord] = deque(maxlen=LAST_SEALS)
        self._blocks_mined = 0
        self._draft: _OverlayDraft | None = None  # the next block, filling (mining thread)
        self._last_activity = 0.0  # time.monotonic() of the latest RPC request
        self._last_tx = 0.0  # ... and of the latest transaction submitted
        self._dev_tx_arrived = False  # a transaction came since the last dev block

    @property
    def _chain(self) -> PoaiChain:
        return self._importer.chain

    def start(self) -> None:
        """Start the mining thread (when mining, or on a dev node)."""
        if not self.mine and self.dev is None:
            return
        self._miner = Miner(workers=self.miner_workers)
        self._stop.clear()
        self._mining_thread = threading.Thread(
            target=self._mining_loop, name="poai-mining", daemon=True
        )
        self._mining_thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.dev is not None:
            self.dev.wake()
        if self._miner is not None:
            self._miner.cancel()
        if self._mining_thread is not None:
            self._mining_thread.join(timeout=30)
            self._mining_thread = None
        if self.dev is not None:
            self.dev.fail_requests(DevModeError("the node is stopping"))
        if self._miner is not None:
            self._miner.close()
            self._miner = None

    def halt(self) -> None:
        """Stop mining without waiting (safe from the mining thread itself): the node cannot
        store blocks any more."""
        self._stop.set()
        if self._miner is not None:
            self._miner.cancel()

    def on_new_head(self) -> None:
        """The head moved: the block being mined is stale."""
        if self._miner is not None:
            self._miner.cancel()

    def note_activity(self) -> None:
        """An RPC request arrived: drafting waits for a moment (DRAFT_IDLE_S)."""
        self._last_activity = time.monotonic()

    def note_transaction(self) -> None:
        """A transaction arrived: a block due now waits for the burst to end (BUSY_DEFER_S)."""
        self._last_tx = time.monotonic()
        if self.dev is not None:  # automine: a block for it now
            self._dev_tx_arrived = True
            self.dev.wake()

    def mining_stats(self) -> MiningStats:
        miner = self._miner
        return MiningStats(
            mining=self.mine and miner is not None,
            workers=self.miner_workers if self.mine else 0,
            hashrate=float(miner.hashrate()) if miner is not None else 0.0,
            blocks_mined=self._blocks_mined,
            attempts=int(miner.total_attempts()) if miner is not None else 0,
            last_seals=list(reversed(self._seals)),
        )

    def _mining_loop(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                if self.dev is not None:
                    self._dev_step(self.dev)
                else:
                    self._mine_one()
                backoff = 1.0
            except GovernanceReadError:
                log.critical("governance state unreadable: mining stopped (logged above)")
                return
            except StorageError:
                return  # the node reported it and stops
            except (MissingBlobs, MissingDataset, SeedStateUnavailable) as exc:
                # Not a fault of the block: the epoch's files are not here yet.
                log.error("cannot mine on #%d: %s; retrying in %.0f s",
                          self._importer.head().block_number, exc, backoff)
                self._fetch_missing(exc)
                self._stop.wait(backoff)
                backoff = min(30.0, backoff * 2)
            except Exception:
                # Keep the node serving; retry with a growing pause (a dead worker is restarted
                # by the next mine(), bad assets keep failing and keep being reported).
                log.exception("mining round failed; retrying in %.0f s", backoff)
                self._stop.wait(backoff)
                backoff = min(30.0, backoff * 2)

    def _fetch_missing(self, exc: Exception) -> None:
        """Ask peers for missing blobs; datasets come by other means."""
        network = self._network()
        if network is None or not isinstance(exc, MissingBlobs):
            return
        for digest in exc.digests:
            try:
                network.fetch_blob(digest)
                log.info("fetched blob %s from a peer", digest)
            except Exception as err:  # noqa: BLE001 - no peer has it yet: retry later
                log.warning("blob %s: %s", digest, err)

    def _mine_one(self) -> None:
        with self.lock:
            parent = self._importer.head()
            wait = parent.timestamp + 1 - self._now()
        if wait > 0:
            # Never stamp a block ahead of the clock: wait for the next second, drafting the
            # block meanwhile.
            self._draft_until(parent, time.monotonic() + wait)
            return
        t0 = time.monotonic()
        deferred = self._wait_for_burst_end()
        drafted = len(self._draft.draft) if self._draft is not None else 0
        pending = self.build_template()
        started = time.monotonic()
        log.debug("slot: deferred %.3f s, drafted %d txs, build %.3f s, %d txs", deferred,
                  drafted, started - t0 - deferred, len(pending.template.block.transactions))
        self._seal_and_commit(pending, started)

    def _seal_and_commit(self, pending: SealingWork, started: float) -> ImportResult | None:
        """Mine the template's seal and store the block; None when stopped or the head moved."""
        miner = self._miner
        assert miner is not None  # the mining thread runs only with a miner
        attempts_before = miner.total_attempts()
        seal = None
        header = pending.template.header
        while seal is None and not self._stop.is_set() and not self._is_stale(pending):
            seal = miner.mine(
                pending.quiz, pending.template.seal_hash, header.difficulty,
                timeout=_MINE_SLICE_S,
            )
        if seal is None or self._stop.is_set():
            return None
        attempts = miner.total_attempts() - attempts_before
        return self.commit_block(
            pending, seal.nonce, seal.mix_hash,
            losses=tuple(seal.losses), attempts=attempts, seconds=time.monotonic() - started,
        )

    # ---------------------------------------------------------------- dev node (--dev)
    def _now(self) -> float:
        """The clock blocks are stamped by: a dev node's can be moved (evm_increaseTime)."""
        return self.dev.now() if self.dev is not None else time.time()

    def _dev_step(self, dev: DevMode) -> None:
        """One turn of a dev node's mining loop: a requested block (evm_mine, a cheat), else
        a block when automine has transactions or the interval is up, else a short wait."""
        req = dev.next_request()
        if req is not None and not req.block and dev.applied_seq >= req.cheat_seq:
            with self.lock:  # its cheats came with an earlier block
                head = self._chain.get_block_by_header(self._importer.head())
            req.done.set_result(head)
            return
        if req is None and not self._dev_block_due(dev):
            if dev.interval == 1.0 and dev.next_timestamp is None and not dev.impersonated:
                self._mine_one()  # as a non-dev node mines: drafting, one block a second
            else:
                dev.wait(0.05)
            return
        try:
            block = None
            while block is None and not self._stop.is_set():
                block = self._dev_mine(dev, req)
        except Exception as exc:
            if req is None:
                raise
            req.done.set_exception(exc)
            if isinstance(exc, DevModeError):
                return
            raise
        if req is not None:
            if block is None:
                req.done.set_exception(DevModeError("the node is stopping"))
            else:
                req.done.set_result(block)

    def _dev_block_due(self, dev: DevMode) -> bool:
        with self.lock:
            parent = self._importer.head()
            if dev.interval > 1 and dev.now() >= parent.timestamp + dev.interval:
                return True
            if dev.interval == 1.0 and (dev.next_timestamp is not None or dev.impersonated) \
                    and dev.now() >= parent.timestamp + 1:
                return True
            if dev.pending_cheats()[0]:
                return True
            if not (dev.automine and self._dev_tx_arrived):
                return False
            if self._candidates(parent):
                self._dev_tx_arrived = False
                return True
        # Told before the pool has it (Node.submit_raw_transaction): look again shortly.
        if time.monotonic() - self._last_tx > 1.0:
            self._dev_tx_arrived = False
        return False

    def _dev_mine(self, dev: DevMode, req: MineRequest | None) -> BlockAPI | None:
        """Build, seal and store one block now (dev clock, queued cheats; the timestamp a
        request asks for); None when the head moved meanwhile (evm_revert) or the node stops."""
        started = time.monotonic()
        with self.lock:
            parent = self._importer.head()
            timestamp = req.timestamp if req is not None else None
            if req is not None and req.spacing is not None:
                timestamp = parent.timestamp + req.spacing
            ts = dev.timestamp_for(parent, timestamp)
            cheats, seq = dev.pending_cheats()
            # While addresses are impersonated the block names them, so it re-executes.
            records = cheats + [impersonation(a) for a in sorted(dev.impersonated)]
            overlay = WriteBuffer(self._importer.buffer)
            extra = store_cheats(overlay, records) if records else b""
            draft = BlockDraft(self._chain_class(overlay), parent, self.coinbase, timestamp=ts,
                               extra_data=extra)
            draft.add(self._candidates(parent))
            template = draft.finish()
            quiz = self._chain.consensus_context.quiz_for(template.header)
            pending = SealingWork(template, overlay, self._importer.head_version, quiz)
        result = self._seal_and_commit(pending, started)
        if result is None:
            return None
        dev.block_stored(result.block, seq)
        if result.block.transactions:  # automine: what did not fit goes in the next block
            self._dev_tx_arrived = True
        return result.block

    def _wait_for_burst_end(self) -> float:
        """While transactions are still arriving (the latest < DRAFT_IDLE_S ago), wait, at
        most BUSY_DEFER_S; returns the seconds waited."""
        started = time.monotonic()
        deadline = started + BUSY_DEFER_S
        while (time.monotonic() - self._last_tx < DRAFT_IDLE_S
               and time.monotonic() < deadline and not self._stop.is_set()):
            self._stop.wait(DRAFT_IDLE_S / 4)
        return time.monotonic() - started

    def _is_stale(self, pending: SealingWork) -> bool:
        return pending.head_version != self._importer.head_version

    def build_template(
        self, transactions: Sequence[SignedTransactionAPI] | None = None
    ) -> SealingWork:
        """A finalized, unsealed block on the current head: the pool's best transactions (or
        `transactions`), subsidy to our coinbase.  Its state lives in a private overlay until
        `commit_block`, so a failed import elsewhere never drops it."""
        with self.lock:
            parent = self._importer.head()
            draft, self._draft = self._draft, None
            if transactions is not None or draft is None or not self._draft_usable(draft):
                draft = self._new_draft(parent)
            if transactions is None:
                transactions = self._candidates(parent)
            draft.draft.add(transactions)
            template = draft.draft.finish()
            quiz = self._chain.consensus_context.quiz_for(template.header)
            return SealingWork(template, draft.overlay, self._importer.head_version, quiz)

    def _candidates(self, parent: BlockHeaderAPI) -> list[SignedTransactionAPI]:
        base_fee = calculate_expected_base_fee_per_gas(parent)
        return self.txpool.select(base_fee, self.config.gas_limit)

    def _new_draft(self, parent: BlockHeaderAPI) -> _OverlayDraft:
        """An empty draft on `parent` (call under the lock); its state lives in a private
        overlay until `commit_block`, so a failed import elsewhere never drops it."""
        overlay = WriteBuffer(self._importer.buffer)
        draft = BlockDraft(self._chain_class(overlay), parent, self.coinbase,
                           timestamp=max(parent.timestamp + 1, int(self._now())))
        return _OverlayDraft(draft, overlay, self._importer.head_version, bytes(parent.hash))

    def _draft_usable(self, d: _OverlayDraft) -> bool:
        """Whether a draft may become the block now (under the lock): same head, the timestamp
        a new block would get now, and every transaction in it still in the pool (none
        replaced by a fee bump or evicted meanwhile)."""
        head = self._importer.head()
        if d.head_version != self._importer.head_version or d.parent_hash != bytes(head.hash):
            return False
        if d.draft.header.timestamp != max(head.timestamp + 1, int(self._now())):
            return False
        return all(self.txpool.get(h) is not None for h in d.draft.applied_hashes)

    def _draft_until(self, parent: BlockHeaderAPI, until: float) -> None:
        """Fill the next block's draft from the pool until `until` (monotonic), in steps of
        DRAFT_STEP_TXS transactions taken only while RPC has been idle for DRAFT_IDLE_S."""
        queue: list[SignedTransactionAPI] = []
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= until:
                return
            idle = now - self._last_activity
            if idle < DRAFT_IDLE_S:
                self._stop.wait(min(DRAFT_IDLE_S - idle, until - now))
                continue
            with self.lock:
                if self._importer.head().hash != parent.hash:
                    return  # a new head: the mining loop starts over
                d = self._draft
                if d is None or d.head_version != self._importer.head_version:
                    d = self._draft = self._new_draft(parent)
                    queue = []
                if not queue:  # the pool's candidates not drafted yet, best first
                    queue = [tx for tx in self._candidates(parent) if tx not in d.draft]
                step, queue = queue[:DRAFT_STEP_TXS], queue[DRAFT_STEP_TXS:]
                if step:
                    d.draft.add(step)
            if not step:  # nothing new in the pool
                self._stop.wait(min(0.1, max(0.0, until - time.monotonic())))

    def commit_block(
        self,
        pending: SealingWork,
        nonce: int,
        mix_hash: bytes,
        *,
        losses: tuple[float, ...] = (),
        attempts: int = 0,
        seconds: float = 0.0,
    ) -> ImportResult | None:
        """Seal a template and store it as the new head (seal checked like any block); None
        when the head moved since the template was built (the block would be an uncle)."""
        block = pending.template.seal(nonce, mix_hash)
        # The seal check is one forward pass: run it before store_block takes Node.lock for
        # long (RPC waits on the lock); store_block then finds the losses remembered.
        self._chain.consensus_context.check_seal(block.header, chain_lock=self.lock)

        def stored() -> None:
            self._record(block, nonce, losses, attempts, seconds)

        with self.lock:
            if self._is_stale(pending):
                return None
            return self._importer.store_built(
                block, pending.overlay, pending.template.receipts, stored
            )

    def _record(
        self, block: BlockAPI, nonce: int, losses: tuple[float, ...], attempts: int,
        seconds: float,
    ) -> None:
        """Count and log a block this node mined (lock held, once it is stored)."""
        self._blocks_mined += 1
        q = unpack_q(block.header.mix_hash, self.config.quiz.values)
        self._seals.append(
            SealRecord(block.number, bytes(block.hash), block.header.difficulty, nonce, q,
                       losses, attempts, seconds)
        )
        rate = self._miner.hashrate() if self._miner is not None else 0.0
        log.info(
            "mined block #%d 0x%s txs=%d difficulty=%d attempts=%d in %.2fs "
            "(%.1f attempts/s) mean q=%.4f",
            block.number, block.hash.hex(), len(block.transactions),
            block.header.difficulty, attempts, seconds, rate,
            sum(q) / len(q) / self.config.quiz.grid_scale,
        )
