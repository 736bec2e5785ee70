"""The Node service: chain over LevelDB, block import with fork choice, and the mining loop.

One process holds the chain; `Node.lock` (an RLock) serialises every chain access (RPC handlers,
P2P, the mining thread).  All writes of one block go through a `WriteBuffer` flushed as one
LevelDB write batch, so a crash at any moment leaves the previous head intact.

Mining: build a template from the txpool on the head (under the lock), compute its seal hash,
let the quiz `Miner` grind nonces (without the lock), then import the sealed block (under the
lock) unless the head moved meanwhile; a new head from `import_block` cancels the miner.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.db.chain import ChainDB
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_typing import Address
from eth_utils import ValidationError
from trie.hexary import HexaryTrie

from poai.chain.builder import BlockDraft, BlockTemplate
from poai.chain.chain import PoaiChain, chain_class_for, create_genesis, genesis_hash
from poai.chain.config import ChainConfig, load_genesis_config
from poai.chain.epochs import register_state_source, unregister_state_source
from poai.chain.forkchoice import reorg_diff
from poai.chain.governed import (
    GovernanceReadError,
    GovernedEpochAssets,
    MissingBlobs,
    MissingDataset,
    SeedStateUnavailable,
    config_contracts,
)
from poai.db.buffer import WriteBuffer
from poai.db.leveldb import DatabaseError, LevelDB
from poai.model.store import BlobStore
from poai.quiz.context import QuizContext
from poai.quiz.reduce import unpack_q
from poai.quiz.seal import InvalidSeal, verify_seal

log = logging.getLogger("poai.node")

MARKER_KEY = b"poai:datadir"
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
# Other RPC traffic (polling, calls) never delays a block.  Half a slot: a 500-transaction burst
# lasts ~0.5 s on a slow phase of a 2-core host; 0.25 s left most bursts that met a slot split
# (A/B, 2 x 5 bursts: accepted/s medians 537 -> 675 and 319 -> 401 with 0.5 s).
BUSY_DEFER_S = 0.5


class DatadirError(RuntimeError):
    """The data directory belongs to another chain, is corrupted, or is in use."""


class TxPoolLike(Protocol):
    def add(self, tx: SignedTransactionAPI) -> bytes: ...
    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None: ...
    def select(self, base_fee: int, gas_limit: int) -> list[SignedTransactionAPI]: ...
    def on_new_head(
        self, included: list[SignedTransactionAPI], dropped: list[SignedTransactionAPI]
    ) -> None: ...


class NewHead:
    """The canonical head changed.  `receipts` (of `block`) are read on first use: most
    listeners never need them and reading a big block's receipts back costs more than its
    import's bookkeeping."""

    def __init__(
        self,
        block: BlockAPI,
        receipts: tuple[ReceiptAPI, ...] | Callable[[], tuple[ReceiptAPI, ...]],
        removed_blocks: tuple[BlockAPI, ...] = (),  # left the canonical chain (reorg)
        added_blocks: tuple[BlockAPI, ...] = (),  # joined it, oldest first
    ) -> None:
        self.block = block
        self.removed_blocks = removed_blocks
        self.added_blocks = added_blocks
        self._receipts = receipts

    @functools.cached_property
    def receipts(self) -> tuple[ReceiptAPI, ...]:
        r = self._receipts
        return r if isinstance(r, tuple) else r()

    @property
    def known_receipts(self) -> tuple[ReceiptAPI, ...] | None:
        """The receipts if the event came with them (a block this node built), without
        reading them back otherwise."""
        r = self._receipts
        return r if isinstance(r, tuple) else self.__dict__.get("receipts")

    def __repr__(self) -> str:
        return f"NewHead(#{self.block.number} 0x{self.block.hash.hex()})"


@dataclass(frozen=True)
class NewPendingTx:
    tx_hash: bytes


NodeEvent = NewHead | NewPendingTx


@dataclass(frozen=True)
class ImportResult:
    block: BlockAPI
    new_canonical: tuple[BlockAPI, ...]  # empty: stored on a side chain (or already known)
    removed: tuple[BlockAPI, ...]
    already_known: bool = False

    @property
    def is_new_head(self) -> bool:
        return bool(self.new_canonical)


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


class Node:
    def __init__(
        self,
        datadir: Path | str,
        config: ChainConfig,
        *,
        mine: bool = False,
        miner_workers: int = 1,
        coinbase: bytes = b"\x00" * 20,
        txpool: TxPoolLike | None = None,
    ) -> None:
        if len(coinbase) != 20:
            raise ValueError("coinbase must be a 20-byte address")
        self.datadir = Path(datadir)
        self.config = config
        self.mine = mine
        self.miner_workers = miner_workers
        self.coinbase = coinbase
        self.txpool: Any = txpool
        self.lock = threading.RLock()
        # Governance contracts in genesis (name -> address; empty for a chain without them).
        contracts = config_contracts(config)
        self.contracts: dict[str, bytes] = contracts.addresses if contracts is not None else {}
        # Blobs of governed snapshots (and what P2P serves); datasets voted in by DatasetDAO.
        self.blob_store = BlobStore(self.datadir / "blobs")
        self.dataset_dir = self.datadir / "datasets"
        self.epoch_assets: GovernedEpochAssets | None = (
            GovernedEpochAssets(config, self.blob_store.root, self.dataset_dir)
            if contracts is not None else None
        )
        self.chain_class = chain_class_for(config, self.epoch_assets)
        self._db: LevelDB | None = None
        self._buffer: WriteBuffer | None = None
        self._chain: PoaiChain | None = None
        self._listeners: list[Callable[[NodeEvent], None]] = []
        self._stop = threading.Event()
        self._head_version = 0
        self._head: BlockHeaderAPI | None = None  # cached canonical head (see `head`)
        self._miner: Any = None
        self._mining_thread: threading.Thread | None = None
        self._seals: deque[SealRecord] = deque(maxlen=LAST_SEALS)
        self._blocks_mined = 0
        self._draft: _Draft | None = None  # the next block being filled (mining thread only)
        self._last_activity = 0.0  # time.monotonic() of the latest RPC request
        self._last_tx = 0.0  # ... and of the latest transaction submitted

    def note_activity(self) -> None:
        """An RPC request arrived: the miner defers drafting for a moment (DRAFT_IDLE_S)."""
        self._last_activity = time.monotonic()

    # ---------------------------------------------------------------- lifecycle
    @property
    def chain(self) -> PoaiChain:
        if self._chain is None:
            raise RuntimeError("node is not started")
        return self._chain

    def start(self) -> None:
        with self.lock:
            self._open_db()
            if self.epoch_assets is not None:
                # Seal checks built outside this chain object (P2P sync) read through us.
                register_state_source(self.config, self.epoch_assets, self._state_after)
            if self.txpool is None:
                from poai.txpool.pool import TxPool

                self.txpool = TxPool(
                    self.config.chain_id,
                    self._pool_state_at_head,
                    block_gas_limit=lambda: self.config.gas_limit,
                )
            head = self.head()
            log.info(
                "chain %d head #%d %s (td %d)",
                self.config.chain_id,
                head.block_number,
                "0x" + head.hash.hex(),
                self.chain.get_score(head.hash),
            )
        if self.mine:
            from poai.quiz.miner import Miner

            self._miner = Miner(workers=self.miner_workers)
            self._stop.clear()
            self._mining_thread = threading.Thread(
                target=self._mining_loop, name="poai-mining", daemon=True
            )
            self._mining_thread.start()

    def stop(self) -> None:
        if self.epoch_assets is not None:
            unregister_state_source(self.config, self.epoch_assets)
        self._stop.set()
        if self._miner is not None:
            self._miner.cancel()
        if self._mining_thread is not None:
            self._mining_thread.join(timeout=30)
            self._mining_thread = None
        if self._miner is not None:
            self._miner.close()
            self._miner = None
        with self.lock:
            if self._buffer is not None:
                self._buffer.flush()
            self._chain = None
            self._head = None
            self._buffer = None
            # py-evm's lru_caches on ChainDB methods keep databases alive until exit.
            ChainDB._get_block_transactions.cache_clear()
            ChainDB._get_block_withdrawals.cache_clear()
            HexaryTrie._cached_create_node_to_db_mapping.cache_clear()
            if self._db is not None:
                self._db.close()
                self._db = None

    def _open_db(self) -> None:
        path = self.datadir / "chaindata"
        self.datadir.mkdir(parents=True, exist_ok=True)
        try:
            db = LevelDB(path)
        except DatabaseError as exc:
            if "lock" in str(exc).lower():
                raise DatadirError(f"data dir {self.datadir} is in use by another process") from exc
            raise DatadirError(f"data dir {self.datadir}: {exc}") from exc
        try:
            self._check_or_init(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _check_or_init(self, db: LevelDB) -> None:
        expected = genesis_hash(self.config)
        buffer = WriteBuffer(db)
        raw = db.get(MARKER_KEY) if db.exists(MARKER_KEY) else None
        if raw is None:
            if _has_any_key(db):
                raise DatadirError(
                    f"data dir {self.datadir} holds data but no PoAI chain marker: "
                    "not a PoAI data dir, or corrupted"
                )
            chain = create_genesis(buffer, self.config, self.chain_class)
            buffer[MARKER_KEY] = json.dumps(
                {"chainId": self.config.chain_id, "genesisHash": "0x" + expected.hex()}
            ).encode()
            buffer.flush()  # genesis, state and marker in one write batch
            log.info("initialised data dir %s (genesis 0x%s)", self.datadir, expected.hex())
        else:
            try:
                marker = json.loads(raw)
                chain_id, stored = int(marker["chainId"]), str(marker["genesisHash"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DatadirError(f"data dir {self.datadir}: corrupted chain marker") from exc
            if chain_id != self.config.chain_id or stored != "0x" + expected.hex():
                raise DatadirError(
                    f"data dir {self.datadir} belongs to chain {chain_id} (genesis {stored}), "
                    f"but the config is chain {self.config.chain_id} (genesis 0x{expected.hex()})"
                )
            chain = self.chain_class(buffer)
            try:
                head = chain.get_canonical_head()
                chain.get_vm(head).state.get_balance(Address(self.coinbase))
                if chain.get_canonical_block_hash(0) != expected:  # type: ignore[arg-type]
                    raise DatadirError("genesis block differs from the marker")
            except DatadirError:
                raise
            except Exception as exc:
                raise DatadirError(
                    f"data dir {self.datadir} is corrupted: cannot read the head: {exc!r}"
                ) from exc
        self._buffer = buffer
        self._chain = chain

    # ---------------------------------------------------------------- reads
    def head(self) -> BlockHeaderAPI:
        # Every RPC request resolves "latest": keep the head header instead of reading and
        # decoding it from the db each time. It is dropped under the lock whenever a block is
        # stored, so a reader without the lock sees the head before or after an import.
        head = self._head
        if head is not None:
            return head
        with self.lock:
            head = self._head = self.chain.get_canonical_head()
            return head

    def state_at_head(self) -> StateAPI:
        with self.lock:
            return self.chain.get_vm(self.chain.get_canonical_head()).state

    def _pool_state_at_head(self) -> StateAPI:
        """The head's state for the pool, read straight from LevelDB when the block write
        buffer is empty (it is whenever Node.lock is free: every store flushes before it lets
        go). The pool admits transactions without Node.lock, under its own lock only, while a
        block may be built or committed: LevelDB reads are safe against that writer, reads
        through the write buffer during its flush are not."""
        with self.lock:
            head = self.chain.get_canonical_head()
            buffer = self._buffer
            if buffer is None or buffer.pending or self._db is None:
                return self.chain.get_vm(head).state
            return self.chain_class(self._db).get_vm(head).state

    def _state_after(self, header: BlockHeaderAPI) -> StateAPI:
        with self.lock:
            return self.chain.state_after(header)

    def quiz_context(self, header: BlockHeaderAPI) -> QuizContext:
        """The quiz a header (whose parent is stored) must answer: the one function that both
        verification and mining use (epoch key, governed model snapshot and dataset)."""
        source = self.chain.consensus_context.source
        assert source is not None
        return source.quiz_context_for(header)

    def current_quiz(self) -> QuizContext:
        """The quiz of the next block on the head (its epoch's manifest, dataset, key)."""
        with self.lock:
            head = self.head()
            child = self.chain.create_header_from_parent(head, timestamp=head.timestamp + 1)
            return self.quiz_context(child)

    def add_listener(self, fn: Callable[[NodeEvent], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, event: NodeEvent) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:
                log.exception("node listener %r failed", fn)

    # ---------------------------------------------------------------- transactions
    def submit_raw_transaction(self, raw: bytes) -> bytes:
        """Decode and admit a transaction; safe without Node.lock (the pool has its own lock
        and reads the head's state from LevelDB), so acceptance never waits for a block being
        built or committed."""
        from poai.txpool.pool import decode_transaction

        vms = self.chain.vm_configuration
        if len(vms) == 1:  # one VM from genesis on: no head lookup, no lock per transaction
            builder = vms[0][1].get_transaction_builder()
        else:
            with self.lock:
                builder = self.chain.get_vm_class(self.head()).get_transaction_builder()
        self._last_tx = time.monotonic()
        tx = decode_transaction(builder, raw)
        tx_hash = bytes(self.txpool.add(tx))
        self._emit(NewPendingTx(tx_hash))
        return tx_hash

    # ---------------------------------------------------------------- import
    def import_block(self, block: BlockAPI) -> ImportResult:
        """Validate (header, seal, state transition) and store a block; adopt it as head when it
        gives the greatest total difficulty.  Raises ValidationError for an invalid block."""
        _recover_senders(block)  # outside the lock: RPC may run meanwhile
        with self.lock:
            chain = self.chain
            if chain.chaindb.header_exists(block.hash):
                return ImportResult(block, (), (), already_known=True)
            parent = chain.get_block_header_by_hash(block.header.parent_hash)
            # Cheap checks first: header rules, then one forward pass for the seal, and only
            # then the state transition.
            chain.get_vm_class(block.header).validate_header(block.header, parent)
            chain.validate_seal(block.header)
            buffer = self._buffer
            assert buffer is not None
            old_head = chain.get_canonical_head()
            try:
                imported = chain.execute_and_store(block)
                buffer.flush()
            except BaseException:
                buffer.discard()
                raise
            finally:
                self._head = None
            return self._adopt(imported, old_head)

    def _adopt(
        self,
        block: BlockAPI,
        old_head: BlockHeaderAPI,
        receipts: tuple[ReceiptAPI, ...] | None = None,
    ) -> ImportResult:
        """After a block is stored: tell the pool, the miner and the listeners (lock held)."""
        new_head = self.chain.get_canonical_head()
        if new_head.hash == old_head.hash:
            old_canonical: list[BlockAPI] = []
            new_canonical: list[BlockAPI] = []
        else:
            old_canonical, new_canonical = reorg_diff(
                self.chain, old_head, new_head, {block.hash: block}
            )
        res = ImportResult(block, tuple(new_canonical), tuple(old_canonical))
        if not new_canonical:
            log.info("stored side-chain block #%d 0x%s", block.number, block.hash.hex())
            return res
        self._head_version += 1
        if self._miner is not None:
            self._miner.cancel()
        included = [tx for b in new_canonical for tx in b.transactions]
        included_hashes = {tx.hash for tx in included}
        dropped = [
            tx for b in old_canonical for tx in b.transactions if tx.hash not in included_hashes
        ]
        if old_canonical:
            log.info(
                "reorg: %d blocks removed, %d added, %d transactions back to the pool",
                len(old_canonical), len(new_canonical), len(dropped),
            )
        if self.txpool is not None:
            self.txpool.on_new_head(included, dropped)
        head_block = new_canonical[-1]
        chaindb = self.chain.chaindb
        lock = self.lock

        def read_receipts() -> tuple[ReceiptAPI, ...]:
            with lock:
                return tuple(head_block.get_receipts(chaindb))

        known = receipts if receipts is not None and head_block.hash == block.hash else None
        self._emit(NewHead(head_block, known or read_receipts, tuple(old_canonical),
                           tuple(new_canonical)))
        return res

    # ---------------------------------------------------------------- mining
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
                self._mine_one()
                backoff = 1.0
            except GovernanceReadError:
                log.critical("governance state unreadable: mining stopped (logged above)")
                return
            except (MissingBlobs, MissingDataset, SeedStateUnavailable) as exc:
                # Not a fault of the block: the epoch's files are not here yet.
                log.error("cannot mine on #%d: %s; retrying in %.0f s",
                          self.head().block_number, exc, backoff)
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
        """Ask peers for missing blobs (P2P sets `node.p2p`); datasets come by other means."""
        p2p = getattr(self, "p2p", None)
        if p2p is None or not isinstance(exc, MissingBlobs):
            return
        for digest in exc.digests:
            try:
                p2p.fetch_blob(digest)
                log.info("fetched blob %s from a peer", digest)
            except Exception as err:  # noqa: BLE001 - no peer has it yet: retry later
                log.warning("blob %s: %s", digest, err)

    def _mine_one(self) -> None:
        with self.lock:
            parent = self.head()
            wait = parent.timestamp + 1 - time.time()
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
        attempts_before = self._miner.total_attempts()
        seal = None
        header = pending.template.header
        while seal is None and not self._stop.is_set() and not self._is_stale(pending):
            seal = self._miner.mine(
                pending.quiz, pending.template.seal_hash, header.difficulty,
                timeout=_MINE_SLICE_S,
            )
        if seal is None or self._stop.is_set():
            return
        attempts = self._miner.total_attempts() - attempts_before
        self.commit_block(
            pending, seal.nonce, seal.mix_hash,
            losses=tuple(seal.losses), attempts=attempts, seconds=time.monotonic() - started,
        )

    def _wait_for_burst_end(self) -> float:
        """While transactions are still arriving (the latest < DRAFT_IDLE_S ago), wait, at
        most BUSY_DEFER_S; returns the seconds waited."""
        started = time.monotonic()
        deadline = started + BUSY_DEFER_S
        while (time.monotonic() - self._last_tx < DRAFT_IDLE_S
               and time.monotonic() < deadline and not self._stop.is_set()):
            self._stop.wait(DRAFT_IDLE_S / 4)
        return time.monotonic() - started

    def _is_stale(self, pending: PendingBlock) -> bool:
        return pending.head_version != self._head_version

    def build_template(
        self, transactions: Sequence[SignedTransactionAPI] | None = None
    ) -> PendingBlock:
        """A finalized, unsealed block on the current head: the pool's best transactions (or
        `transactions`), subsidy to our coinbase.  Its state lives in a private overlay until
        `commit_block`, so a failed import elsewhere never drops it."""
        with self.lock:
            parent = self.head()
            draft, self._draft = self._draft, None
            if transactions is not None or draft is None or not self._draft_usable(draft):
                draft = self._new_draft(parent)
            if transactions is None:
                transactions = self._candidates(parent)
            draft.draft.add(transactions)
            template = draft.draft.finish()
            return PendingBlock(
                template, draft.overlay, self._head_version, self.quiz_context(template.header)
            )

    def _candidates(self, parent: BlockHeaderAPI) -> list[SignedTransactionAPI]:
        base_fee = calculate_expected_base_fee_per_gas(parent)
        return self.txpool.select(base_fee, self.config.gas_limit)  # type: ignore[no-any-return]

    def _new_draft(self, parent: BlockHeaderAPI) -> _Draft:
        """An empty draft on `parent` (call under the lock); its state lives in a private
        overlay until `commit_block`, so a failed import elsewhere never drops it."""
        assert self._buffer is not None
        overlay = WriteBuffer(self._buffer)
        draft = BlockDraft(self.chain_class(overlay), parent, self.coinbase)
        return _Draft(draft, overlay, self._head_version, bytes(parent.hash))

    def _draft_usable(self, d: _Draft) -> bool:
        """Whether a draft may become the block now (under the lock): same head, the timestamp
        a new block would get now, and every transaction in it still in the pool (none
        replaced by a fee bump or evicted meanwhile)."""
        head = self.head()
        if d.head_version != self._head_version or d.parent_hash != bytes(head.hash):
            return False
        if d.draft.header.timestamp != max(head.timestamp + 1, int(time.time())):
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
                if self.head().hash != parent.hash:
                    return  # a new head: the mining loop starts over
                d = self._draft
                if d is None or d.head_version != self._head_version:
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
        pending: PendingBlock,
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
        # The seal check is one forward pass: run it before taking Node.lock (RPC waits on the
        # lock), on the quiz import would use; store_block then finds the losses remembered.
        context = self.chain.consensus_context
        quiz = context.source.quiz_context_for(block.header) if context.source else pending.quiz
        try:
            checked = verify_seal(quiz, pending.template.seal_hash, nonce, mix_hash,
                                  block.header.difficulty)
        except InvalidSeal as exc:
            raise ValidationError(f"own block #{block.number}: {exc}") from exc
        context.remember(block.hash, checked)
        with self.lock:
            if self._is_stale(pending):
                return None
            buffer = self._buffer
            assert buffer is not None
            old_head = self.chain.get_canonical_head()
            try:
                pending.overlay.flush()  # the template's state into the block's write buffer
                self.chain.store_block(block)  # header rules + seal check, fork choice
                buffer.flush()
            except BaseException:
                buffer.discard()
                raise
            finally:
                self._head = None
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
            return self._adopt(block, old_head, pending.template.receipts)


def _recover_senders(block: BlockAPI) -> None:
    """Recover the senders of a block's transactions the fast way (poai.txpool.pool's
    `recover_sender`, py-evm's result) into py-evm's cached `sender`, where its import looks.
    A signature that recovers no key is left to py-evm, which rejects the block."""
    from poai.txpool.pool import recover_sender

    for tx in block.transactions:
        if "sender" not in tx.__dict__:
            try:
                tx.__dict__["sender"] = recover_sender(tx)
            except Exception:  # noqa: BLE001, S112 - py-evm's own check reports it
                continue


@dataclass
class _Draft:
    draft: BlockDraft
    overlay: WriteBuffer
    head_version: int
    parent_hash: bytes


@dataclass(frozen=True)
class PendingBlock:
    template: BlockTemplate
    overlay: WriteBuffer
    head_version: int
    quiz: QuizContext


def _has_any_key(db: LevelDB) -> bool:
    with db.db.iterator(include_value=False) as it:
        for _ in it:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """A minimal launcher (the `poai` CLI is the user-facing one): run a node until SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m poai.node", description=main.__doc__)
    p.add_argument("--datadir", required=True, type=Path)
    p.add_argument("--config", type=Path, default=None, help="genesis config (default devnet)")
    p.add_argument("--mine", action="store_true")
    p.add_argument("--miner-workers", type=int, default=1)
    p.add_argument("--coinbase", default="0x" + "00" * 20)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = load_genesis_config(args.config)
    coinbase = bytes.fromhex(args.coinbase.removeprefix("0x"))
    node = Node(args.datadir, config, mine=args.mine, miner_workers=args.miner_workers,
                coinbase=coinbase)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    node.start()
    try:
        done.wait()
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
