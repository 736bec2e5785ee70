"""Block import: validation, storage with fork choice, reorgs, and the events that follow.

Every chain write happens under the node's lock, through the block write buffer flushed as one
LevelDB write batch, so a crash at any moment leaves the previous head intact.  A new
canonical head bumps `head_version` (a block being produced on an older head is stale), tells
the pool which transactions were included or dropped, calls `on_new_head` (the producer cancels
its miner) and emits `NewHead` to the listeners (RPC subscriptions, P2P announcements).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth.db.schema import SchemaV1
from eth.rlp.sedes import chain_gaps
from eth_typing import BlockNumber

from poai.chain.chain import PoaiChain
from poai.chain.forkchoice import reorg_diff
from poai.compat.pyevm import cache_sender, cached_sender
from poai.datadir import OpenChain
from poai.db.buffer import WriteBuffer
from poai.db.leveldb import StorageError
from poai.interfaces import TxPoolLike
from poai.txpool.pool import recover_sender

log = logging.getLogger("poai.node")


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


class BlockImporter:
    def __init__(
        self, lock: threading.RLock, txpool: TxPoolLike, on_new_head: Callable[[], None]
    ) -> None:
        self.lock = lock
        self.txpool = txpool
        self._on_new_head = on_new_head
        self._opened: OpenChain | None = None
        self._listeners: list[Callable[[NodeEvent], None]] = []
        self._head: BlockHeaderAPI | None = None  # cached canonical head (see `head`)
        self.head_version = 0  # bumped at every new canonical head
        # Called (lock held) when a block's write batch could not be written (disk full,
        # read-only): the node stops; the database still ends at the previous block.
        self.on_storage_error: Callable[[StorageError], None] = lambda exc: None

    def attach(self, opened: OpenChain | None) -> None:
        """The open chain database to import into (None: closed)."""
        with self.lock:
            self._opened = opened
            self._head = None

    @property
    def chain(self) -> PoaiChain:
        if self._opened is None:
            raise RuntimeError("node is not started")
        return self._opened.chain

    @property
    def buffer(self) -> WriteBuffer:
        if self._opened is None:
            raise RuntimeError("node is not started")
        return self._opened.buffer

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

    def add_listener(self, fn: Callable[[NodeEvent], None]) -> None:
        self._listeners.append(fn)

    def emit(self, event: NodeEvent) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:
                log.exception("node listener %r failed", fn)

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
            old_head = chain.get_canonical_head()
            with self._block_writes():
                imported = chain.execute_and_store(block)
            return self._adopt(imported, old_head)

    def store_built(
        self,
        block: BlockAPI,
        overlay: WriteBuffer,
        receipts: tuple[ReceiptAPI, ...],
        stored: Callable[[], None] = lambda: None,
    ) -> ImportResult:
        """Store a block this node built (its state already in `overlay`) as any block: header
        rules, seal check (remembered), fork choice; `stored` runs once it is written, before
        the events (lock held).  The caller checks `head_version` under the lock first."""
        with self.lock:
            chain = self.chain
            old_head = chain.get_canonical_head()
            with self._block_writes():
                overlay.flush()  # the template's state into the block's write buffer
                chain.store_block(block)  # header rules + seal check, fork choice
            stored()
            return self._adopt(block, old_head, receipts)

    @contextlib.contextmanager
    def _block_writes(self) -> Iterator[WriteBuffer]:
        """The block write buffer, flushed as one batch at the end (dropped on an error);
        the cached head is re-read after (lock held)."""
        buffer = self.buffer
        try:
            yield buffer
            buffer.flush()
        except BaseException as exc:
            buffer.discard()
            if isinstance(exc, StorageError):
                self.on_storage_error(exc)
            raise
        finally:
            self._head = None

    def rewind_to(self, target: BlockHeaderAPI) -> tuple[BlockAPI, ...]:
        """Make the canonical block `target` the head again (a dev node's evm_revert): the
        blocks after it leave the canonical chain (they stay stored, as side-chain blocks do)
        and their transactions are dropped, not returned to the pool.  Returns them."""
        with self.lock:
            chain = self.chain
            old_head = chain.get_canonical_head()
            if chain.get_canonical_block_hash(target.block_number) != target.hash:
                raise ValueError(f"block #{target.block_number} is not canonical")
            removed = tuple(chain.get_canonical_block_by_number(BlockNumber(n))
                            for n in range(target.block_number + 1, old_head.block_number + 1))
            if not removed:
                return ()
            with self._block_writes() as buffer:
                for block in removed:
                    for tx in block.transactions:
                        key = SchemaV1.make_transaction_hash_to_block_lookup_key(tx.hash)
                        if key in buffer:
                            del buffer[key]
                    del buffer[SchemaV1.make_block_number_to_hash_lookup_key(block.number)]
                buffer[SchemaV1.make_canonical_head_hash_lookup_key()] = target.hash
                # py-evm's record of which headers/blocks it holds: all up to the target, so
                # the next block is an extension, not a gap fill over the dropped ones.
                gaps = rlp.encode(((), target.block_number + 1), sedes=chain_gaps)
                buffer[SchemaV1.make_header_chain_gaps_lookup_key()] = gaps
                buffer[SchemaV1.make_chain_gaps_lookup_key()] = gaps
            log.info("rewound to #%d 0x%s: %d blocks dropped", target.block_number,
                     target.hash.hex(), len(removed))
            self.head_version += 1
            self._on_new_head()
            self.txpool.on_new_head([], [])
            head_block = chain.get_block_by_header(target)
            chaindb = chain.chaindb
            self.emit(NewHead(head_block, lambda: tuple(head_block.get_receipts(chaindb)),
                              removed, ()))
            return removed

    def _adopt(
        self,
        block: BlockAPI,
        old_head: BlockHeaderAPI,
        receipts: tuple[ReceiptAPI, ...] | None = None,
    ) -> ImportResult:
        """After a block is stored: tell the pool, the producer and the listeners (lock held)."""
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
        self.head_version += 1
        self._on_new_head()
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
        self.txpool.on_new_head(included, dropped)
        head_block = new_canonical[-1]
        chaindb = self.chain.chaindb
        lock = self.lock

        def read_receipts() -> tuple[ReceiptAPI, ...]:
            with lock:
                return tuple(head_block.get_receipts(chaindb))

        known = receipts if receipts is not None and head_block.hash == block.hash else None
        self.emit(NewHead(head_block, known or read_receipts, tuple(old_canonical),
                          tuple(new_canonical)))
        return res


def _recover_senders(block: BlockAPI) -> None:
    """Recover the senders of a block's transactions the fast way (poai.txpool.pool's
    `recover_sender`, py-evm's result) into py-evm's cached `sender`, where its import looks.
    A signature that recovers no key is left to py-evm, which rejects the block."""
    for tx in block.transactions:
        if cached_sender(tx) is None:
            try:
                cache_sender(tx, recover_sender(tx))
            except Exception:  # noqa: BLE001, S112 - py-evm's own check reports it
                continue
