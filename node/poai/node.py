"""The Node: one process's chain over LevelDB, composed of its roles.

- `poai.datadir`: the data directory (chain database checked against its genesis config).
- `poai.importer.BlockImporter`: block import, fork choice, reorgs, head events.
- `poai.producer.BlockProducer`: drafting blocks from the pool and the mining loop.
- ports (`poai.interfaces`): the transaction pool, the optional network, and the epoch-asset
  source the chain reads each epoch's quiz from (`poai.chain.governed.GovernedEpochAssets`).

`Node.lock` (an RLock) serialises every chain access (RPC handlers, P2P, the mining thread);
services reach the node through `poai.interfaces.NodeLike`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI, StateAPI
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas

from poai.chain.chain import PoaiChain, chain_class_for
from poai.chain.config import ChainConfig, config_contracts, load_genesis_config
from poai.chain.devchain import DevPoaiVM
from poai.chain.governed import GovernedEpochAssets
from poai.datadir import DatadirError, OpenChain, close_chain, open_chain
from poai.db.leveldb import StorageError
from poai.devmode import DevMode
from poai.governance.payloads import DatasetFileCollector, PayloadCollector
from poai.housekeeping import Housekeeping
from poai.importer import BlockImporter, ImportResult, NewHead, NewPendingTx, NodeEvent
from poai.interfaces import Network, NetworkFactory, TxPoolLike
from poai.model.store import BlobStore
from poai.producer import BlockProducer, MiningStats, SealingWork, SealRecord
from poai.quiz.context import QuizContext
from poai.txpool.journal import TxJournal
from poai.txpool.pool import TxPool, TxPoolError, decode_transaction

log = logging.getLogger("poai.node")

__all__ = [
    "DatadirError", "ImportResult", "MiningStats", "NetworkStartError", "NewHead",
    "NewPendingTx", "Node",
    "NodeEvent", "SealingWork", "SealRecord",
]


JOURNAL_REWRITE_EVERY = 4096  # appended records between two rewrites of the journal


class NetworkStartError(RuntimeError):
    """The node's network did not start (the node is stopped again)."""


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
        network: NetworkFactory | None = None,
        dev: bool = False,
        journal: bool = True,
    ) -> None:
        """`txpool`: the transaction pool (default: a TxPool over this node's head state);
        `network`: builds the node's network once its chain is open (default: none);
        `dev`: a development node (`poai node --dev`): `self.dev` (DevMode) and the dev VM
        rules (poai.chain.devchain); with `mine` it mines every second, and on request either
        way (evm_mine, cheats; automine once a client turns it on: a `--dev` node without
        `--mine` may be a P2P follower, which must not mine on gossiped transactions);
        `journal`: keep the transactions this node's clients send in
        `<datadir>/txpool/transactions.journal` and pool them again at start."""
        if len(coinbase) != 20:
            raise ValueError("coinbase must be a 20-byte address")
        self.datadir = Path(datadir)
        self.config = config
        self.mine = mine
        self.miner_workers = miner_workers
        self.coinbase = coinbase
        self.lock = threading.RLock()
        self.txpool: TxPoolLike = txpool if txpool is not None else TxPool(
            config.chain_id, self._pool_state_at_head, block_gas_limit=lambda: config.gas_limit,
            next_base_fee=lambda: calculate_expected_base_fee_per_gas(self.head()),
        )
        self.journal = TxJournal(self.datadir / "txpool" / "transactions.journal") \
            if journal else None
        self._local: dict[bytes, bytes] = {}  # hash -> raw of local transactions journaled
        self._journal_lock = threading.Lock()
        self.housekeeping = Housekeeping()
        self._network_factory = network
        self.network: Network | None = None
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
        self.dev: DevMode | None = (
            DevMode(automine=False, interval=1.0 if mine else 0.0) if dev else None)
        self.chain_class = (
            chain_class_for(config, self.epoch_assets, vm_class=DevPoaiVM,
                            dev_clock=self.dev.now)
            if self.dev is not None else chain_class_for(config, self.epoch_assets))
        self._opened: OpenChain | None = None
        self.importer = BlockImporter(self.lock, self.txpool, self._on_new_head)
        self.importer.on_storage_error = self._storage_failed
        # The write error that stopped this node (disk full, read-only), and who is told.
        self.storage_failure: StorageError | None = None
        self._failure_listeners: list[Callable[[StorageError], None]] = []
        self.producer = BlockProducer(
            config, self.chain_class, self.importer, self.txpool, coinbase=coinbase, mine=mine,
            miner_workers=miner_workers, network=lambda: self.network, dev=self.dev,
        )
        if contracts is not None:  # expert payloads carried by the chain -> blob store
            self.add_listener(PayloadCollector(
                contracts.contracts.registry, self.blob_store,
                BlobStore(self.datadir / "payload-chunks"),
            ).listener(lambda: self.chain))
            # the quality gate's model evaluations, started before the boundary (off the lock)
            self.add_listener(self._prefetch_gate)
            # dataset files uploaded to DatasetDAO -> <datadir>/datasets
            self.add_listener(DatasetFileCollector(
                contracts.contracts.dataset_dao, self.dataset_dir,
                BlobStore(self.datadir / "dataset-chunks"),
            ).listener(lambda: self.chain))

    def _prefetch_gate(self, event: NodeEvent) -> None:
        if self.epoch_assets is None or not isinstance(event, NewHead):
            return
        header = event.block.header
        try:
            state = self.chain.get_vm(header).state
        except Exception as exc:  # noqa: BLE001 - only a speed-up: never fail an import
            log.debug("quality gate prefetch: no state at #%d: %s", header.block_number, exc)
            return
        try:
            self.epoch_assets.prefetch_gate(
                state, header.block_number // self.config.quiz.epoch_blocks)
        except Exception as exc:  # noqa: BLE001 - only a speed-up: never fail an import
            log.warning("quality gate prefetch failed: %s", exc)

    def _on_new_head(self) -> None:
        self.producer.on_new_head()

    def on_storage_failure(self, fn: Callable[[StorageError], None]) -> None:
        """`fn(error)` runs once when a block cannot be written (the CLI then stops the node
        with that one line); mining stops at once, the database keeps its last good head."""
        self._failure_listeners.append(fn)

    def _storage_failed(self, exc: StorageError) -> None:
        if self.storage_failure is not None:
            return
        self.storage_failure = exc
        if not self._failure_listeners:  # else the listener (the CLI) says it, once
            log.critical("%s", exc)
        self.producer.halt()
        for fn in list(self._failure_listeners):
            fn(exc)

    # ---------------------------------------------------------------- lifecycle
    @property
    def chain(self) -> PoaiChain:
        return self.importer.chain

    def start(self) -> None:
        with self.lock:
            self._opened = open_chain(self.datadir, self.config, self.chain_class)
            self.importer.attach(self._opened)
            head = self.head()
            log.info(
                "chain %d head #%d %s (td %d)",
                self.config.chain_id,
                head.block_number,
                "0x" + head.hash.hex(),
                self.chain.get_score(head.hash),
            )
        self._replay_journal()
        self.producer.start()
        self.housekeeping.start()
        if self._network_factory is not None:
            try:
                self.network = self._network_factory(self)
                self.network.start()
            except Exception as exc:
                self.network = None
                self.stop()
                raise NetworkStartError(f"cannot start the network: {exc}") from exc

    def stop(self) -> None:
        self.housekeeping.stop()
        if self.network is not None:
            self.network.stop()
            self.network = None
        self.producer.stop()
        self._rewrite_journal()
        if self.journal is not None:
            self.journal.close()
        with self.lock:
            opened, self._opened = self._opened, None
            self.importer.attach(None)
            if opened is not None:
                close_chain(opened)

    # ---------------------------------------------------------------- reads
    def head(self) -> BlockHeaderAPI:
        return self.importer.head()

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
            opened = self._opened
            if opened is None or opened.buffer.pending:
                return self.chain.get_vm(head).state
            return self.chain_class(opened.db).get_vm(head).state

    def quiz_context(self, header: BlockHeaderAPI) -> QuizContext:
        """The quiz a header (whose parent is stored) must answer: the one function that both
        verification and mining use (epoch key, governed model snapshot and dataset)."""
        return self.chain.consensus_context.quiz_for(header)

    def epoch_governance(self, seed_hash: bytes) -> dict[str, Any] | None:
        """How governance set the epoch whose seed block is `seed_hash`: snapshot used, the one
        scheduled, and the quality gate's word (None: no governance, or not read yet)."""
        hit = self.epoch_assets.cached(seed_hash) if self.epoch_assets is not None else None
        if hit is None:
            return None
        a = hit[1]
        return {"snapshot": a.snapshot_id,
                "scheduledSnapshot": a.scheduled_snapshot_id or a.snapshot_id,
                "manifest": a.manifest_hash, "dataset": a.dataset_id,
                "qualityGate": a.gate_note or "passed"}

    def current_quiz(self) -> QuizContext:
        """The quiz of the next block on the head (its epoch's manifest, dataset, key)."""
        with self.lock:
            head = self.head()
            child = self.chain.create_header_from_parent(head, timestamp=head.timestamp + 1)
            return self.quiz_context(child)

    def add_listener(self, fn: Callable[[NodeEvent], None]) -> None:
        self.importer.add_listener(fn)

    # ---------------------------------------------------------------- transactions
    def submit_raw_transaction(self, raw: bytes, *, local: bool = True) -> bytes:
        """Decode and admit a transaction; safe without Node.lock (the pool has its own lock
        and reads the head's state from LevelDB), so acceptance never waits for a block being
        built or committed.  `local`: sent by this node's own clients (journaled), not
        gossiped by a peer."""
        vms = self.chain.vm_configuration
        if len(vms) == 1:  # one VM from genesis on: no head lookup, no lock per transaction
            builder = vms[0][1].get_transaction_builder()
        else:
            with self.lock:
                builder = self.chain.get_vm_class(self.head()).get_transaction_builder()
        self.producer.note_transaction()
        tx = decode_transaction(builder, raw)
        tx_hash = bytes(self.txpool.add(tx))
        if local and self.journal is not None:
            self._journal_local(tx_hash, bytes(raw))
        self.importer.emit(NewPendingTx(tx_hash))
        return tx_hash

    # ---------------------------------------------------------------- the local journal
    def _journal_local(self, tx_hash: bytes, raw: bytes) -> None:
        assert self.journal is not None
        with self._journal_lock:
            try:
                self.journal.append(raw)
            except OSError as exc:  # a full disk stops the node at its next block write
                log.warning("cannot journal transaction 0x%s: %s", tx_hash.hex(), exc)
                return
            self._local[tx_hash] = raw
            due = self.journal.appended >= JOURNAL_REWRITE_EVERY
        if due:
            self._rewrite_journal()

    def _rewrite_journal(self) -> None:
        """Keep in the journal only the local transactions the pool still holds."""
        if self.journal is None:
            return
        with self._journal_lock:
            self._local = {h: r for h, r in self._local.items()
                           if self.txpool.get(h) is not None}
            try:
                self.journal.rewrite(self._local.values())
            except OSError as exc:
                log.warning("cannot rewrite the transaction journal %s: %s",
                            self.journal.path, exc)

    def _replay_journal(self) -> None:
        """Pool again the local transactions a previous run journaled; those mined or no
        longer valid meanwhile are dropped from the journal."""
        if self.journal is None:
            return
        raws, problem = self.journal.load()
        if problem is not None:
            log.warning("transaction journal %s: %s", self.journal.path, problem)
        pooled = 0
        for raw in raws:
            try:
                tx_hash = self.submit_raw_transaction(raw, local=False)
            except TxPoolError as exc:
                log.debug("journaled transaction not pooled again: %s", exc)
                continue
            with self._journal_lock:
                self._local[tx_hash] = raw
            pooled += 1
        if raws:
            log.info("pooled %d of %d journaled local transactions again (%d mined or no "
                     "longer valid)", pooled, len(raws), len(raws) - pooled)
        self._rewrite_journal()

    # ---------------------------------------------------------------- import and mining
    def import_block(self, block: BlockAPI) -> ImportResult:
        """Validate (header, seal, state transition) and store a block; adopt it as head when it
        gives the greatest total difficulty.  Raises ValidationError for an invalid block."""
        return self.importer.import_block(block)

    def rewind_to(self, header: BlockHeaderAPI) -> tuple[BlockAPI, ...]:
        """Make the canonical block `header` the head again, dropping the blocks after it
        (a dev node's evm_revert; BlockImporter.rewind_to)."""
        if self.dev is None:
            raise RuntimeError("rewinding the chain is for dev nodes only")
        return self.importer.rewind_to(header)

    def note_activity(self) -> None:
        """An RPC request arrived: the miner defers drafting for a moment."""
        self.producer.note_activity()

    def mining_stats(self) -> MiningStats:
        return self.producer.mining_stats()

    def build_template(
        self, transactions: Sequence[SignedTransactionAPI] | None = None
    ) -> SealingWork:
        """A finalized, unsealed block on the current head (see BlockProducer)."""
        return self.producer.build_template(transactions)

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
        """Seal a template and store it as the new head; None when the head moved since."""
        return self.producer.commit_block(
            pending, nonce, mix_hash, losses=losses, attempts=attempts, seconds=seconds
        )


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
